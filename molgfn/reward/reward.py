"""The reward: components -> desirability transforms -> weighted mean (x any 'multiply' terms) -> a score
in [0, 1].

Built from the ``[reward]`` table of a run config (see ``docs/reward.md`` for the schema)::

    reward = Reward.from_config(run_config["reward"], base_dir=config_file.parent)
    result = reward.score(["CCO", "c1ccccc1O", "not a smiles"])   # result.score in [0, 1]
    log_r = reward.log_reward(result.score, beta=8.0)               # beta * log(max(s, min_score))
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (same API)
    import tomli as tomllib

from molgfn.chem.molecules import MolBatch
from molgfn.errors import MolgfnError
from molgfn.reward import aggregate as agg
from molgfn.reward._config import Table
from molgfn.reward.cache import CachedComponent, OracleCache, open_cache
from molgfn.reward.components import Component, resolve_path
from molgfn.reward.kinds import component_kinds
from molgfn.reward.transforms import Identity, OutOfRangeError, Transform, transform_from_config

if TYPE_CHECKING:
    import pandas as pd

_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# output column names (RewardResult.to_frame, the CLI) that a component name must not take
_RESERVED_NAMES = ("smiles", "name", "valid", "score", "log_reward")


@dataclass
class RewardTerm:
    """One configured component: its name, what computes it, its transform and its weight.

    A ``multiply`` term stays out of the mean: the mean of the others is multiplied by its desirability
    raised to ``weight`` (a penalty, like REINVENT's filter components; with a 0/1 step transform, a gate)."""

    name: str
    component: Component
    transform: Transform
    weight: float
    multiply: bool = False

    @property
    def kind(self) -> str:
        return self.component.kind


@dataclass
class RewardResult:
    """Scores of a batch: ``score`` (n,) in [0, 1]; per component name, ``raw`` values (NaN where
    undefined) and ``transformed`` desirabilities in [0, 1]; ``valid`` (n,) bool, False for SMILES
    RDKit could not parse (their score is 0)."""

    smiles: list[str]
    score: np.ndarray
    raw: dict[str, np.ndarray]
    transformed: dict[str, np.ndarray]
    valid: np.ndarray

    @staticmethod
    def join(parts: Sequence[RewardResult]) -> RewardResult:
        """The results of consecutive batches as one."""
        names = list(parts[0].raw) if parts else []
        return RewardResult(
            [s for p in parts for s in p.smiles],
            np.concatenate([p.score for p in parts]),
            {k: np.concatenate([p.raw[k] for p in parts]) for k in names},
            {k: np.concatenate([p.transformed[k] for p in parts]) for k in names},
            np.concatenate([p.valid for p in parts]),
        )

    def take(self, indices: Sequence[int] | np.ndarray) -> RewardResult:
        """The results of the molecules at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return RewardResult(
            [self.smiles[i] for i in idx],
            self.score[idx],
            {k: v[idx] for k, v in self.raw.items()},
            {k: v[idx] for k, v in self.transformed.items()},
            self.valid[idx],
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per SMILES: smiles, valid, score, then ``<name>_raw`` and ``<name>`` per component."""
        import pandas as pd  # lazily: the sampler's hot path does not need it

        columns: dict[str, Any] = {"smiles": self.smiles, "valid": self.valid, "score": self.score}
        for name in self.raw:
            columns[f"{name}_raw"] = self.raw[name]
            columns[name] = self.transformed[name]
        return pd.DataFrame(columns)


@dataclass
class Reward:
    """A multi-component reward; see the module docstring and ``docs/reward.md``."""

    terms: list[RewardTerm]
    aggregation: str = "geometric"
    min_score: float = agg.DEFAULT_MIN_SCORE
    config: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.aggregation not in agg.AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {agg.AGGREGATIONS}, got {self.aggregation!r}")
        if not self.terms:
            raise ValueError("a reward needs at least one component")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], base_dir: Path | None = None) -> Reward:
        """Build and validate a reward from the ``[reward]`` table of a run config.

        Relative file paths (proxy, reference SMILES, a command's program) are resolved against
        ``base_dir`` (the run config's folder) or, if None, the current directory. Every problem raises
        :class:`MolgfnError` naming the field, e.g. ``reward.components[2].transform.high: must be > low``.
        """
        table = Table(cfg, "reward")
        aggregation = table.string("aggregation", "geometric", choices=agg.AGGREGATIONS)
        min_score = table.number("min_score", agg.DEFAULT_MIN_SCORE, gt=0.0, le=1.0)
        workers = table.integer("workers", 0, ge=0)
        cache_path = table.string("oracle_cache", "")
        cache = open_cache(resolve_path(cache_path, base_dir) if cache_path else None)
        raw_components = table.raw("components")
        if not isinstance(raw_components, (list, tuple)) or not raw_components:
            raise table.error("components", "must be a non-empty array of tables ([[reward.components]])")
        table.finish()
        terms: list[RewardTerm] = []
        for i, item in enumerate(raw_components):
            term = _term_from_config(Table(item, f"reward.components[{i}]"), base_dir, cache)
            if term.name in {t.name for t in terms}:
                raise MolgfnError(
                    f"reward.components[{i}].name: duplicate name {term.name!r} (names must be unique; "
                    "the name defaults to the kind)"
                )
            terms.append(term)
        if not sum(t.weight for t in terms if not t.multiply) > 0:
            raise MolgfnError(
                "reward.components: at least one component needs a weight > 0 (a 'multiply' one does not count)"
            )
        for term in terms:
            if hasattr(term.component, "workers"):
                term.component.workers = workers
        return cls(terms, aggregation, min_score, config=dict(cfg))

    @classmethod
    def from_toml(cls, path: str | Path) -> Reward:
        """Build from the ``[reward]`` table of a run config file; paths are relative to its folder."""
        path = Path(path)
        try:
            with path.open("rb") as fh:
                document = tomllib.load(fh)
        except FileNotFoundError:
            raise MolgfnError(f"config file not found: {path}") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise MolgfnError(f"cannot read config file {path}: {exc}") from exc
        if "reward" not in document:
            raise MolgfnError(f"{path}: no [reward] table")
        return cls.from_config(document["reward"], base_dir=path.resolve().parent)

    def score(self, smiles: Sequence[str]) -> RewardResult:
        """Score a batch of SMILES (parsed once, shared by all components). Never raises for a bad
        molecule: an unparsable SMILES gets score 0 and ``valid = False``. A failing plugin raises."""
        batch = MolBatch.parse(smiles)
        valid = batch.valid
        raw: dict[str, np.ndarray] = {}
        transformed: dict[str, np.ndarray] = {}
        for term in self.terms:
            values = term.component.compute(batch)
            values = np.where(valid, values, np.nan)
            try:
                desirability = term.transform(values)
            except OutOfRangeError as exc:
                raise MolgfnError(f"reward component {term.name!r} ({term.kind}): {exc}") from exc
            raw[term.name] = values
            transformed[term.name] = np.where(valid, desirability, 0.0)
        if len(batch) == 0:
            total = np.zeros(0)
        else:
            mean = [t for t in self.terms if not t.multiply]
            total = agg.aggregate(
                [transformed[t.name] for t in mean], [t.weight for t in mean], self.aggregation
            )
            for t in self.terms:
                if t.multiply and t.weight > 0:
                    total = total * np.clip(transformed[t.name], 0.0, 1.0) ** t.weight
        total = np.where(valid, np.clip(total, 0.0, 1.0), 0.0)
        return RewardResult(
            [s if isinstance(s, str) else str(s) for s in smiles], total, raw, transformed, valid
        )

    def log_reward(self, score: np.ndarray | float, beta: np.ndarray | float) -> np.ndarray:
        """``beta * log(max(score, min_score))`` with this reward's ``min_score``; see :func:`log_reward`."""
        return agg.log_reward(score, beta, self.min_score)


def _term_from_config(table: Table, base_dir: Path | None, cache: OracleCache) -> RewardTerm:
    kinds = component_kinds()
    kind = table.string("kind", choices=tuple(kinds))
    name = table.string("name", kind)
    if not _NAME_PATTERN.match(name):
        raise table.error(
            "name", f"must start with a letter and use only letters, digits, '_' or '-' (got {name!r})"
        )
    if name in _RESERVED_NAMES or name.endswith("_raw"):
        raise table.error(
            "name",
            f"{name!r} is reserved for an output column (reserved: {', '.join(_RESERVED_NAMES)}, *_raw)",
        )
    weight = table.number("weight", 1.0, ge=0.0)
    multiply = table.boolean("multiply", False)
    transform_table = table.table("transform", None)
    if transform_table is not None:
        transform = transform_from_config(transform_table)
    elif kinds[kind].default_transform is not None:
        transform = transform_from_config(Table(kinds[kind].default_transform, table.field("transform")))
    elif kinds[kind].unit_interval:
        transform = Identity()
    else:
        raise table.error("transform", f"required for kind {kind!r} (its raw values are not in [0, 1])")
    component = kinds[kind].build(table, name, base_dir)
    if getattr(component, "expensive", False):  # docking, plugins marked expensive: never paid twice
        component = CachedComponent(component, cache)
    table.finish()
    return RewardTerm(name, component, transform, weight, multiply)
