"""Each round's GFlowNet: the start generator's config with the round's reward (the acquisition of the
round's proxy, combined with the drug-likeness terms), warm-started from the previous round's policy.

A round's training is an ordinary run (``rounds/<k>/generator``) with checkpoints, so a crash loses at
most the steps since the last one: the next ``campaign run`` resumes it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from molgfn.config import Config, apply_overrides, config_from_dict, config_to_toml
from molgfn.errors import MolgfnError

if TYPE_CHECKING:
    from molgfn.campaigns.config import CampaignConfig

RUN_ID = "generator"


def start_source(cfg: CampaignConfig) -> str:
    """``generator.start``, a relative path taken from the config's folder."""
    start = cfg.generator.start
    if cfg.base_dir is not None and not Path(start).is_absolute() and (cfg.base_dir / start).exists():
        start = str((cfg.base_dir / start).resolve())
    return start


def start_generator(cfg: CampaignConfig) -> tuple[Config, dict, str]:
    """(config, policy weights, description) of the generator round 1 starts from."""
    from molgfn.candidates.generate import resolve

    try:
        return resolve(start_source(cfg))
    except MolgfnError as exc:
        raise MolgfnError(f"generator.start: {exc}") from None


def acquisition_component(cfg: CampaignConfig, proxy_path: Path | None, utilities: list[float]) -> dict:
    """The reward component of a round's acquisition, its transform fitted to the labels so far
    (``utilities``: labels with the sign that makes higher better)."""
    u = np.asarray(utilities, dtype=float)
    u = u[np.isfinite(u)]
    if u.size == 0:
        raise MolgfnError("no label yet: a round needs at least one labelled molecule")
    spread = float(u.std()) if u.size > 1 and u.std() > 0 else 1.0
    kind = cfg.acquisition.kind
    table: dict[str, Any] = {
        "name": "acquisition",
        "kind": "proxy",
        "path": str(proxy_path) if proxy_path is not None else "default",
        "weight": 1.0,
    }
    if kind == "ei":
        table.update(acquisition="ei", best=float(u.max()))
        table["transform"] = {"kind": "sigmoid", "low": 0.0, "high": spread}
    else:
        table.update(acquisition="ucb", kappa=cfg.acquisition.kappa if kind == "ucb" else 0.0)
        low = float(np.quantile(u, 0.25))
        high = float(u.max()) + 0.5 * spread
        table["transform"] = {"kind": "sigmoid", "low": low, "high": max(high, low + 1e-3)}
    return table


def round_config(
    cfg: CampaignConfig,
    start: Config | None,
    *,
    proxy_path: Path | None,
    runs_dir: Path,
    round_: int,
    labels: list[float],
) -> Config:
    """The training config of round ``round_`` (``labels`` in the oracle's units)."""
    if start is None:
        start = start_generator(cfg)[0]
    data = tomllib.loads(config_to_toml(start))
    data["run"].update(
        name=RUN_ID,
        seed=cfg.campaign.seed + round_,
        runs_dir=str(runs_dir),
        backend=cfg.campaign.backend,
        ray_address=cfg.campaign.ray_address,
    )
    data["train"].update(
        steps=cfg.generator.steps,
        batch_size=cfg.generator.batch_size,
        checkpoint_every=min(
            int(data["train"].get("checkpoint_every", 50)), max(1, cfg.generator.steps // 4)
        ),
        metrics_every=min(int(data["train"].get("metrics_every", 50)), max(1, cfg.generator.steps // 4)),
    )
    if cfg.generator.objective and cfg.generator.objective != data["objective"].get("name"):
        data["objective"] = {"name": cfg.generator.objective}
    utilities = [cfg.sign * v for v in labels]
    terms = [dict(c) for c in cfg.reward["components"]]
    data["reward"] = {
        "aggregation": "geometric",
        "components": [acquisition_component(cfg, proxy_path, utilities), *terms],
    }
    try:
        changed = apply_overrides(data, list(cfg.generator.set))
    except MolgfnError as exc:
        raise MolgfnError(f"set: {exc}") from None
    return config_from_dict(
        data,
        source="generator",
        base_dir=cfg.base_dir,
        check_files=proxy_path is not None,
        _overridden=changed,
    )


def train_round(
    cfg: CampaignConfig,
    folder: Path,
    round_: int,
    proxy_path: Path,
    labels: list[float],
    previous: Path | None,
    progress: bool = True,
) -> Path:
    """Train (or resume) round ``round_``'s generator in ``folder/generator``; returns the run folder.

    ``previous``: the previous round's run folder (its last checkpoint is the warm start), or None for
    the start generator."""
    from molgfn.candidates.generate import resolve
    from molgfn.training.runs import RunStore
    from molgfn.training.trainer import Trainer, build_seeded

    start_cfg, start_policy, _ = start_generator(cfg)
    warm = resolve(previous)[1] if previous is not None else start_policy
    train_cfg = round_config(
        cfg, start_cfg, proxy_path=proxy_path, runs_dir=folder, round_=round_, labels=labels
    )
    run = folder / RUN_ID
    resume = False
    if run.exists():
        store = RunStore.open(run)
        if store.checkpoints():
            resume = True
        else:  # died before its first checkpoint: start the round's training again
            shutil.rmtree(run)
    if not resume:
        store = RunStore.create(train_cfg, run_id=RUN_ID, runs_dir=folder)
    algorithm = build_seeded(train_cfg)
    if not resume:
        try:
            algorithm.policy.load_state_dict(warm)
        except RuntimeError as exc:
            raise MolgfnError(
                f"generator.start: its policy does not fit the round's model settings ({str(exc).splitlines()[0]})"
            ) from None
    status = Trainer(train_cfg, store, algorithm, progress=progress).run(resume=resume)
    if status != "finished":
        raise MolgfnError(
            f"round {round_}: the generator's training {status} ({run}); run the campaign again"
        )
    return run
