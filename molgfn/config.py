"""The run config: one TOML file, one frozen dataclass per table, every hyperparameter named once.

A run is reproducible from its config file (REINVENT-style). Each field carries its default, a one-line
help string and its constraints (``ge``/``gt``/``le``/``choices``) in its metadata; validation is generic
and driven by those fields, so adding a hyperparameter is adding one line here. Every error names the
source and the field, e.g. ``config.toml: train.batch_size: must be >= 1 (got 0)``.

    cfg = load_config("configs/tiny.toml", ["train.steps=500", "run.seed=3"])
    cfg.train.steps                 # 500
    text = config_to_toml(cfg)      # the full, validated config; load_config(...) of it gives cfg back

The ``[reward]`` table is validated by :meth:`molgfn.reward.Reward.from_config` (see docs/reward.md);
relative file paths in it (``path``, ``file``) and a vocabulary path in ``env.vocab`` are resolved against
the config file's folder and stored absolute, so a run's saved config works from any directory.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (same API)
    import tomli as tomllib

import tomli_w

from molgfn.errors import MolgfnError
from molgfn.objectives.registry import OBJECTIVES
from molgfn.resources import CONFIGS, PROXIES, resolve
from molgfn.reward import DEFAULT_REWARD_CONFIG

# fields older run configs may hold, with the one value they had an effect with: read back and dropped
RETIRED_FIELDS: dict[str, Any] = {"objective.backward_guide": "forward"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
RAY_ADDRESS = re.compile(r"^(|auto|[A-Za-z0-9_.-]+:[0-9]{1,5})$")


def _f(default: Any, help: str, **constraints: Any) -> Any:
    """A config field: its default, its help and its constraints (ge, gt, le, lt, choices, pattern)."""
    return field(default=default, metadata={"help": help, **constraints})


@dataclass(frozen=True)
class RunSection:
    """[run]: identity and bookkeeping of a run."""

    name: str = _f("run", "name of the run; new run ids are NAME-YYYYMMDD-HHMMSS (UTC)", pattern=SAFE_NAME)
    seed: int = _f(0, "seed of python, numpy and torch random generators", ge=0)
    device: str = _f("cpu", "torch device", choices=("cpu", "cuda"))
    runs_dir: str = _f("runs", "folder holding the run folders (relative to the working directory)")
    threads: int = _f(1, "torch CPU threads (torch.set_num_threads)", ge=1)
    workers: int = _f(
        1,
        "worker processes that assemble and score finished molecules while the sampler rolls out the others "
        "(0: all in the training process)",
        ge=0,
        le=64,
    )
    backend: str = _f(
        "local",
        "where finished molecules are assembled and scored: 'local' (run.workers processes on this machine) "
        "or 'ray' (Ray actors on this machine or a cluster; pip install 'molgfn[ray]')",
        choices=("local", "ray"),
    )
    ray_address: str = _f(
        "",
        "with backend 'ray': '' starts an embedded Ray on this machine; 'auto' joins the cluster started "
        "here with `ray start`; HOST:PORT joins the cluster whose head is there",
        pattern=RAY_ADDRESS,
    )
    ray_actors: int = _f(0, "with backend 'ray': scoring actors (0: one per CPU of the cluster)", ge=0)


@dataclass(frozen=True)
class EnvSection:
    """[env]: the fragment environment."""

    vocab: str = _f("default", "fragment vocabulary: a shipped name (default, tiny) or a file path")
    max_frags: int = _f(9, "largest number of fragments in a molecule", ge=1, le=20)


@dataclass(frozen=True)
class ModelSection:
    """[model]: the GNN policy."""

    hidden: int = _f(128, "width of node embeddings and MLPs", ge=1)
    layers: int = _f(4, "number of message-passing layers", ge=1)
    layer: str = _f("gine", "message-passing layer type", choices=("gine", "gat", "transformer"))
    beta_embedding: int = _f(32, "bins of the thermometer encoding of the inverse temperature beta", ge=1)
    learned_backward: bool = _f(
        False, "learn the backward policy P_B (else uniform over leaves, with the symmetry correction)"
    )


@dataclass(frozen=True)
class ObjectiveSection:
    """[objective]: the training objective and its options."""

    name: str = _f("entppo", "training objective", choices=OBJECTIVES)  # the registry itself: live
    subtb_lambda: float = _f(0.9, "SubTB weight lambda^(j-i) of a sub-trajectory of length j-i", gt=0.0)
    gae_lambda: float = _f(0.99, "RL-GFN: GAE lambda of the advantages", ge=0.0, le=1.0)
    critic_lr: float = _f(1e-3, "RL-GFN / Ent-PPO: learning rate of the critic (value network)", gt=0.0)
    trpo: bool = _f(False, "RL-GFN: take a TRPO step (conjugate gradient, KL bound, line search)")
    trpo_max_kl: float = _f(0.01, "RL-GFN: KL bound delta of the TRPO step", gt=0.0)
    coupled_backward: bool = _f(False, "RL-GFN: train P_B by the coupled backward actor-critic")
    ppo_epochs: int = _f(4, "Ent-PPO: epochs over each batch", ge=1)
    ppo_minibatches: int = _f(4, "Ent-PPO: minibatches per epoch", ge=1)
    ppo_clip: float = _f(0.2, "Ent-PPO: clip range of the probability ratio", gt=0.0, lt=1.0)
    ent_gae_lambda: float = _f(0.7, "Ent-PPO: GAE lambda of the advantages", ge=0.0, le=1.0)
    ppo_value_head: str = _f(
        "separate",
        "Ent-PPO: the value function: 'separate' (a second GNN with its own optimiser) or 'shared' (the "
        "policy's flow head on the policy's trunk: one pass and one backward serve both)",
        choices=("separate", "shared"),
    )
    ppo_value_coef: float = _f(0.5, "Ent-PPO with a shared value head: weight of the value loss", gt=0.0)


@dataclass(frozen=True)
class TrainSection:
    """[train]: the optimisation loop."""

    steps: int = _f(2000, "training steps (one batch of trajectories each)", ge=1)
    batch_size: int = _f(64, "trajectories per step", ge=1)
    lr: float = _f(1e-3, "learning rate of the policy (Adam)", gt=0.0)
    lr_logz: float = _f(1e-1, "learning rate of log Z", gt=0.0)
    lr_schedule: str = _f("constant", "learning-rate schedule", choices=("constant", "cosine", "linear"))
    warmup_steps: int = _f(0, "steps of linear learning-rate warm-up", ge=0)
    grad_clip: float = _f(10.0, "gradient-norm clipping threshold (0 disables)", ge=0.0)
    epsilon: float = _f(0.0, "probability of a uniformly random action while sampling", ge=0.0, le=1.0)
    beta_min: float = _f(8.0, "smallest inverse temperature beta (drawn per trajectory)", gt=0.0)
    beta_max: float = _f(8.0, "largest inverse temperature beta (drawn uniformly in [min, max])", gt=0.0)
    replay_size: int = _f(0, "capacity of the replay buffer of terminal trajectories (0: none)", ge=0)
    replay_fraction: float = _f(0.0, "fraction of each batch drawn from the replay buffer", ge=0.0, le=1.0)
    sample_ahead: bool = _f(
        False,
        "roll out the next batch before this one's update, so the workers score while it trains "
        "(one update stale; tb, db, subtb and fldb only)",
    )
    checkpoint_every: int = _f(100, "steps between checkpoints (one is always written at the end)", ge=1)
    metrics_every: int = _f(50, "steps between printed metric summaries in train.log", ge=1)
    mode_threshold: float = _f(
        0.7, "reward score from which a molecule counts as a mode (number-of-modes metric)", ge=0.0, le=1.0
    )


SECTIONS: dict[str, type] = {
    "run": RunSection,
    "env": EnvSection,
    "model": ModelSection,
    "objective": ObjectiveSection,
    "train": TrainSection,
}


@dataclass(frozen=True)
class Config:
    """A validated run config. ``reward`` is the ``[reward]`` table as a dict (see docs/reward.md).

    ``base_dir`` is the folder of the config file (the working folder of ``command`` reward plugins);
    it is not written to TOML."""

    run: RunSection = field(default_factory=RunSection)
    env: EnvSection = field(default_factory=EnvSection)
    model: ModelSection = field(default_factory=ModelSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    train: TrainSection = field(default_factory=TrainSection)
    reward: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_REWARD_CONFIG))
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain TOML-ready tables (no ``base_dir``)."""
        out: dict[str, Any] = {}
        for name in SECTIONS:
            section = getattr(self, name)
            out[name] = {f.name: getattr(section, f.name) for f in fields(section)}
        out["reward"] = copy.deepcopy(self.reward)
        return out

    def build_reward(self):  # -> molgfn.reward.Reward
        """The :class:`molgfn.reward.Reward` of this config (loads the proxy, if any)."""
        from molgfn.reward import Reward

        return Reward.from_config(self.reward, self.base_dir)


def field_help() -> dict[str, str]:
    """``{"train.batch_size": "trajectories per step", ...}`` for every field (docs, dashboard, CLI)."""
    return {f"{s}.{f.name}": f.metadata["help"] for s, cls in SECTIONS.items() for f in fields(cls)}


# ---------------------------------------------------------------------------------------------- validation


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _suggest(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (allowed: {', '.join(allowed)})"


def _check_value(value: Any, kind: type, meta: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The value converted to ``kind`` (int -> float), or an error message."""
    if kind is bool:
        if not isinstance(value, bool):
            return value, f"must be a boolean (true or false), got {_type_name(value)} {value!r}"
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return value, f"must be an integer, got {_type_name(value)} {value!r}"
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, f"must be a number, got {_type_name(value)} {value!r}"
        value = float(value)
        if not math.isfinite(value):
            return value, f"must be a finite number, got {value!r}"
    elif kind is str:
        if not isinstance(value, str):
            return value, f"must be a string, got {_type_name(value)} {value!r}"
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        return value, f"must be one of {', '.join(choices)} (got {value!r})"
    pattern = meta.get("pattern")
    if pattern is not None and not pattern.match(value):
        if pattern is RAY_ADDRESS:
            return value, f"must be '', 'auto' or HOST:PORT of a Ray head (got {value!r})"
        return value, f"must use only letters, digits, '_', '.' and '-' (got {value!r})"
    for op, test, sign in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        bound = meta.get(op)
        if bound is not None and not test(value, bound):
            return value, f"must be {sign} {bound:g} (got {value:g})"
    return value, None


def _section_from_table(cls: type, table: Any, section: str, origin: _Origin) -> Any:
    if not isinstance(table, Mapping):
        raise MolgfnError(f"{origin.of(section)}: {section}: must be a table, got {_type_name(table)}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{section}.{key}"
        if dotted in RETIRED_FIELDS and key not in known:
            if value == RETIRED_FIELDS[dotted]:
                continue  # an older run's config: the only value that ever did anything
            raise MolgfnError(f"{origin.of(dotted)}: {dotted}: this option no longer exists")
        if key not in known:
            raise MolgfnError(f"{origin.of(dotted)}: {dotted}: {_suggest(key, known)}")
        meta = next(f.metadata for f in fields(cls) if f.name == key)
        value, problem = _check_value(value, hints[key], meta)
        if problem:
            raise MolgfnError(f"{origin.of(dotted)}: {dotted}: {problem}")
        values[key] = value
    return cls(**values)


class _Origin:
    """Where each value came from, for messages: the config file, or a ``--set`` override."""

    def __init__(self, source: str, overridden: set[str]) -> None:
        self.source = source
        self.overridden = overridden

    def of(self, dotted: str) -> str:
        if any(
            dotted == o or dotted.startswith(o + ".") or o.startswith(dotted + ".") for o in self.overridden
        ):
            return "--set"
        return self.source


def config_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "config",
    base_dir: Path | None = None,
    check_files: bool = True,
    _overridden: set[str] | None = None,
) -> Config:
    """Validate a config document (the parsed TOML) into a :class:`Config`; missing keys take defaults.

    With ``check_files`` the vocabulary is loaded and the reward built (proxy and reference files must
    exist), so a bad path fails here, before any training. Errors are :class:`MolgfnError` whose message
    starts with ``source`` and the dotted field."""
    origin = _Origin(source, _overridden or set())
    allowed = [*SECTIONS, "reward"]
    for key in data:
        if key not in allowed:
            raise MolgfnError(f"{origin.of(key)}: {key}: {_suggest(key, allowed).replace('key', 'table', 1)}")
    sections = {
        name: _section_from_table(cls, data.get(name, {}), name, origin) for name, cls in SECTIONS.items()
    }
    train: TrainSection = sections["train"]
    if train.beta_min > train.beta_max:
        raise MolgfnError(
            f"{origin.of('train.beta_min')}: train.beta_min: must be <= train.beta_max "
            f"(got {train.beta_min:g} > {train.beta_max:g})"
        )
    if train.replay_fraction > 0 and train.replay_size == 0:
        raise MolgfnError(
            f"{origin.of('train.replay_fraction')}: train.replay_fraction: needs train.replay_size > 0 "
            f"(got replay_fraction {train.replay_fraction:g} with replay_size 0)"
        )
    if train.sample_ahead and OBJECTIVES[sections["objective"].name].on_policy:
        off_policy = ", ".join(name for name, spec in OBJECTIVES.items() if not spec.on_policy)
        raise MolgfnError(
            f"{origin.of('train.sample_ahead')}: train.sample_ahead: needs an off-policy objective "
            f"({off_policy}); {sections['objective'].name} learns only from its current policy"
        )
    reward = data.get("reward", DEFAULT_REWARD_CONFIG)
    if not isinstance(reward, Mapping):
        raise MolgfnError(f"{origin.of('reward')}: reward: must be a table, got {_type_name(reward)}")
    reward = _absolute_reward_paths(copy.deepcopy(dict(reward)), base_dir)
    env: EnvSection = sections["env"]
    sections["env"] = replace(env, vocab=_absolute_vocab(env.vocab, base_dir))
    cfg = Config(**sections, reward=reward, base_dir=base_dir)
    if check_files:
        check_config_files(cfg, source=source, origin=origin)
    return cfg


def _absolute_vocab(vocab: str, base_dir: Path | None) -> str:
    from molgfn.resources import VOCABULARIES as SHIPPED

    if vocab in SHIPPED or base_dir is None:
        return vocab
    path = Path(vocab).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def _absolute_reward_paths(reward: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """Proxy ``path`` and similarity ``file`` of each component made absolute (relative to ``base_dir``;
    a proxy ``path = "default"`` is the shipped proxy)."""
    components = reward.get("components")
    if base_dir is None or not isinstance(components, list):
        return reward
    for item in components:
        if not isinstance(item, dict):
            continue
        for key in ("path", "file"):
            value = item.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                path = (base_dir / Path(value).expanduser()).resolve()
                if key == "path" and item.get("kind") == "proxy" and not path.exists() and value in PROXIES:
                    path = PROXIES[value]  # "default": the shipped proxy
                item[key] = str(path)
    return reward


def check_config_files(cfg: Config, *, source: str = "config", origin: _Origin | None = None) -> None:
    """Load the vocabulary and build the reward, so a missing file or a bad reward fails early."""
    from molgfn.chem.vocab import load_vocabulary

    origin = origin or _Origin(source, set())
    try:
        load_vocabulary(cfg.env.vocab)
    except MolgfnError as exc:
        raise MolgfnError(f"{origin.of('env.vocab')}: env.vocab: {exc}") from None
    try:
        cfg.build_reward()
    except MolgfnError as exc:
        raise MolgfnError(f"{origin.of('reward')}: {exc}") from None


# ------------------------------------------------------------------------------------------- files, --set


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.steps=500"`` -> (["train", "steps"], 500): the value in TOML syntax, else a plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise MolgfnError(f"--set {text}: expected KEY=VALUE, e.g. --set train.steps=500")
    parts = key.split(".")
    if any(not p for p in parts):
        raise MolgfnError(f"--set {text}: bad key {key!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> set[str]:
    """Set each ``key=value`` of ``overrides`` into ``data`` (in place); returns the dotted keys set."""
    done: set[str] = set()
    for text in overrides:
        parts, value = parse_override(text)
        if parts[0] == "reward" and len(parts) > 1 and "reward" not in data:
            # no [reward] table means the default reward: override a key of it, not the whole table
            data["reward"] = copy.deepcopy(DEFAULT_REWARD_CONFIG)
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise MolgfnError(f"--set {text}: {'.'.join(parts[: i + 1])} is not a table")
            node = child
        node[parts[-1]] = value
        done.add(".".join(parts))
    return done


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file, or a shipped config by name (``default``, ``tiny``)."""
    path = resolve(path, CONFIGS)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise MolgfnError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise MolgfnError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise MolgfnError(f"{path}: cannot read config file ({exc})") from None


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), *, check_files: bool = True
) -> Config:
    """Read a run config (``None``: all defaults), apply ``--set`` overrides, validate everything.

    Relative paths inside the file are relative to its folder; without a file, to the working folder."""
    if path is None:
        data: dict[str, Any] = {}
        source, base_dir = "defaults", Path.cwd()
    else:
        data = read_toml(path)
        path = resolve(path, CONFIGS)
        source, base_dir = path.name, path.resolve().parent
    overridden = apply_overrides(data, overrides)
    return config_from_dict(
        data, source=source, base_dir=base_dir, check_files=check_files, _overridden=overridden
    )


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    if is_dataclass(value):  # pragma: no cover - sections are flattened by to_dict
        return _drop_none(value.__dict__)
    return value


def config_to_toml(cfg: Config) -> str:
    """The whole config as TOML (every field, defaults included); :func:`load_config` reads it back."""
    return tomli_w.dumps(_drop_none(cfg.to_dict()))


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(config_to_toml(cfg), encoding="utf-8")
