"""A campaign's config: one TOML file, validated as a whole before anything runs.

    [campaign]    name, rounds, batch size, pool size, direction of the oracle's values, hit threshold
    [oracle]      what labels a batch: any reward component table (docking, a plugin, a proxy), or
                  kind = "lab" (the batch is exported and the campaign waits for an import)
    [acquisition] mean, ucb (mean + kappa * spread) or ei (expected improvement over the best label)
    [selection]   the diversity rule within a batch and optional filters
    [proxy]       the proxy ensemble retrained on every label
    [generator]   the GFlowNet warm-started each round: where it starts, steps, batch size, overrides
    [reward]      the drug-likeness terms combined with the acquisition (reward components)

Every error names the file and the field (``campaign.toml: campaign.batch_size: must be >= 1 (got 0)``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from molgfn.config import SAFE_NAME, _f, _Origin, _section_from_table, _suggest, read_toml
from molgfn.errors import MolgfnError
from molgfn.reward import Reward
from molgfn.reward.defaults import ALERTS_GATE

LAB = "lab"
DEFAULT_TERMS: list[dict[str, Any]] = [
    {"name": "qed", "kind": "qed", "weight": 0.5, "transform": {"kind": "identity"}},
    {
        "name": "sa",
        "kind": "sa",
        "weight": 0.5,
        "transform": {"kind": "reverse_sigmoid", "low": 2.0, "high": 6.0},
    },
    {"name": "mw", "kind": "mw", "weight": 0.5, "transform": {"kind": "window", "low": 200.0, "high": 500.0}},
    ALERTS_GATE,
]


@dataclass(frozen=True)
class CampaignSection:
    name: str = _f("campaign", "name of the campaign; ids are NAME-YYYYMMDD-HHMMSS (UTC)", pattern=SAFE_NAME)
    rounds: int = _f(5, "rounds of design after the start set (each: proxy, generator, batch, labels)", ge=1)
    batch_size: int = _f(64, "molecules labelled per round", ge=1, le=10_000)
    pool_size: int = _f(0, "molecules sampled per round to pick the batch from (0: 5 x batch_size)", ge=0)
    start_size: int = _f(
        0, "from nothing: molecules labelled first, picked for diversity (0: batch_size)", ge=0
    )
    seed: int = _f(0, "seed of the campaign (each round's generator and proxy take seed + round)", ge=0)
    direction: str = _f(
        "maximize", "which oracle values are better: maximize (pK) or minimize (docking kcal/mol)",
        choices=("maximize", "minimize"),
    )  # fmt: skip
    hit_threshold: float = _f(
        math.nan, "a label at least this good counts as a hit (nan: the start set's 90th percentile)"
    )
    backend: str = _f("local", "where the oracle scores a batch: local or ray", choices=("local", "ray"))
    ray_address: str = _f("", "with backend 'ray': '', 'auto' or HOST:PORT of a Ray head")
    oracle_cache: str = _f("", "the oracle cache file ('': the shared default, see docs/oracles.md)")


@dataclass(frozen=True)
class AcquisitionSection:
    kind: str = _f(
        "ucb", "mean, ucb (mean + kappa * spread) or ei (expected improvement)", choices=("mean", "ucb", "ei")
    )
    kappa: float = _f(1.0, "ucb: weight of the proxy ensemble's spread", ge=0.0)


@dataclass(frozen=True)
class SelectionSection:
    diversity: str = _f(
        "ceiling", "within a batch: ceiling (best first, no pair above max_similarity), maxmin (greedy "
        "max-min among the best 3 x batch_size) or none", choices=("ceiling", "maxmin", "none"),
    )  # fmt: skip
    max_similarity: float = _f(
        0.7, "ceiling: largest Tanimoto similarity (Morgan r2) within a batch", gt=0.0, le=1.0
    )
    filters: tuple = _f((), 'candidate filters (molgfn sample --filter syntax), e.g. ["lipinski"]')


@dataclass(frozen=True)
class ProxySection:
    model: str = _f(
        "fp", "proxy family: fp (random forest), gnn (ensemble) or auto", choices=("fp", "gnn", "auto")
    )
    ensemble: int = _f(3, "gnn: ensemble members", ge=1)
    split: str = _f(
        "random", "held-out split of the labels: random or scaffold", choices=("random", "scaffold")
    )


@dataclass(frozen=True)
class GeneratorSection:
    start: str = _f("default", "the generator of round 1: 'default' (shipped), a generator folder or a run")
    steps: int = _f(200, "training steps per round (warm-started from the previous round)", ge=1)
    batch_size: int = _f(64, "trajectories per training step", ge=1)
    objective: str = _f("", "objective of the rounds' training ('': the start generator's)")
    set: tuple = _f((), 'more training overrides, as for --set (e.g. ["train.lr=3e-4"])')


SECTIONS: dict[str, type] = {
    "campaign": CampaignSection,
    "acquisition": AcquisitionSection,
    "selection": SelectionSection,
    "proxy": ProxySection,
    "generator": GeneratorSection,
}


@dataclass(frozen=True)
class CampaignConfig:
    campaign: CampaignSection
    acquisition: AcquisitionSection
    selection: SelectionSection
    proxy: ProxySection
    generator: GeneratorSection
    oracle: dict[str, Any]
    reward: dict[str, Any]
    base_dir: Path | None = None

    @property
    def lab(self) -> bool:
        return self.oracle.get("kind") == LAB

    @property
    def pool(self) -> int:
        return self.campaign.pool_size or 5 * self.campaign.batch_size

    @property
    def sign(self) -> float:
        """+1 when higher labels are better, -1 otherwise: the proxy learns ``sign * label``."""
        return 1.0 if self.campaign.direction == "maximize" else -1.0

    def oracle_reward(self) -> Reward:
        """The oracle as a one-component reward (its raw value is the label); expensive components use
        the oracle cache."""
        if self.lab:
            raise MolgfnError("oracle: kind 'lab' has no reward (its labels are imported)")
        # the label is the raw value; a transform that takes any value keeps the reward from objecting
        wide = {"kind": "linear", "low": -1e12, "high": 1e12}
        table = {**self.oracle, "name": "oracle", "weight": 1.0, "transform": wide}
        reward: dict[str, Any] = {"components": [table]}
        if self.campaign.oracle_cache:
            reward["oracle_cache"] = self.campaign.oracle_cache
        return Reward.from_config(reward, self.base_dir)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: asdict(getattr(self, name)) for name in SECTIONS}
        for name, key in (("selection", "filters"), ("generator", "set")):
            out[name][key] = list(out[name][key])
        out["campaign"] = {
            k: v for k, v in out["campaign"].items() if not (isinstance(v, float) and math.isnan(v))
        }
        out["oracle"] = self.oracle
        out["reward"] = self.reward
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


def campaign_config_from_dict(
    data: Mapping[str, Any], *, source: str = "campaign config", base_dir: Path | None = None
) -> CampaignConfig:
    """Validate a campaign document; every error starts with ``source`` and names the field."""
    origin = _Origin(source, set())
    allowed = [*SECTIONS, "oracle", "reward"]
    for key in data:
        if key not in allowed:
            raise MolgfnError(f"{source}: {key}: {_suggest(key, allowed).replace('key', 'table', 1)}")
    sections = {
        name: _section_from_table(cls, data.get(name, {}), name, origin) for name, cls in SECTIONS.items()
    }
    for name, key in (("selection", "filters"), ("generator", "set")):
        value = getattr(sections[name], key)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise MolgfnError(f"{source}: {name}.{key}: must be an array of strings, got {value!r}")
        sections[name] = replace(sections[name], **{key: tuple(value)})
    campaign: CampaignSection = sections["campaign"]
    if (
        campaign.oracle_cache
        and base_dir is not None
        and not Path(campaign.oracle_cache).expanduser().is_absolute()
    ):
        campaign = sections["campaign"] = replace(
            campaign, oracle_cache=str((base_dir / campaign.oracle_cache).resolve())
        )
    pool = campaign.pool_size or 5 * campaign.batch_size
    if pool < campaign.batch_size:
        raise MolgfnError(
            f"{source}: campaign.pool_size: must be >= campaign.batch_size (got {pool} < {campaign.batch_size})"
        )
    if sections["selection"].filters:
        from molgfn.candidates.filters import parse_filters

        try:
            parse_filters(sections["selection"].filters)
        except MolgfnError as exc:
            raise MolgfnError(f"{source}: selection.filters: {exc}") from None
    oracle = data.get("oracle")
    if not isinstance(oracle, Mapping) or "kind" not in oracle:
        raise MolgfnError(
            f"{source}: oracle: missing; give a table with a 'kind' (a reward component kind or 'lab')"
        )
    oracle = _absolute_paths(dict(oracle), base_dir)
    reward = data.get("reward", {"components": copy.deepcopy(DEFAULT_TERMS)})
    if not isinstance(reward, Mapping) or set(reward) - {"components"}:
        raise MolgfnError(
            f"{source}: reward: must be a table with only 'components' (the drug-likeness terms)"
        )
    reward = {"components": [_absolute_paths(dict(c), base_dir) for c in reward.get("components", [])]}
    cfg = CampaignConfig(**sections, oracle=oracle, reward=reward, base_dir=base_dir)
    check_campaign_config(cfg, source)
    return cfg


def check_campaign_config(cfg: CampaignConfig, source: str) -> None:
    """Build what the campaign will build (the oracle, the terms, the start generator's config) so that a
    wrong kind, a missing file or a bad override fails now."""
    if not cfg.lab:
        try:
            cfg.oracle_reward()
        except MolgfnError as exc:
            raise MolgfnError(f"{source}: {str(exc).replace('reward.components[0]', 'oracle')}") from None
    if cfg.reward["components"]:
        try:
            Reward.from_config(cfg.reward, cfg.base_dir)
        except MolgfnError as exc:
            raise MolgfnError(f"{source}: {exc}") from None
    from molgfn.campaigns.generator import round_config

    try:
        round_config(cfg, None, proxy_path=None, runs_dir=Path("."), round_=1, labels=[0.0, 1.0])
    except MolgfnError as exc:
        raise MolgfnError(f"{source}: generator: {exc}") from None


def _absolute_paths(table: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """A component table's file paths (``receptor``, ``box_from``, ``path``, ``file``) made absolute."""
    if base_dir is None:
        return table
    for key in ("receptor", "box_from", "path", "file"):
        value = table.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            candidate = Path(base_dir) / value
            if candidate.exists() or key != "path":
                table[key] = str(candidate.resolve())
    return table


def load_campaign_config(path: str | Path) -> CampaignConfig:
    """A campaign config file, or a shipped one by name (``campaign_seh_docking``)."""
    from molgfn.resources import CAMPAIGN_CONFIGS, resolve

    path = resolve(path, CAMPAIGN_CONFIGS)
    if not path.is_file():
        raise MolgfnError(f"{path}: campaign config not found")
    return campaign_config_from_dict(read_toml(path), source=str(path), base_dir=path.resolve().parent)


def field_names() -> list[str]:
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls)]
