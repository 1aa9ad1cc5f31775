"""Terminal trees to scored molecules: assembly, reward and symmetry weight.

Every molecule goes through :func:`score_trees`, in the sampler's process or in a worker of
:class:`molgfn.sampling.pool.ScorePool`, so the result does not depend on where it was computed (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molgfn.chem.tree import Tree, log_symmetry_weight, tree_smiles
from molgfn.chem.vocab import Vocabulary

# score function: SMILES -> (score in [0, 1], transformed components per name)
ScoreFn = Callable[[list[str]], tuple[np.ndarray, dict[str, np.ndarray]]]
# components of this prefix are molecule properties (QED, SA, MW, logP, TPSA, HBD, HBA, alerts), not reward terms:
# a run records them once per molecule so that the dashboard need not compute them again
PROPERTY_PREFIX = "property:"


@dataclass
class Scored:
    """Molecules of some trees: SMILES, score, transformed components and log W(x), in tree order."""

    smiles: list[str]
    score: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)
    log_w: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @staticmethod
    def join(parts: Sequence[Scored]) -> Scored:
        parts = list(parts)
        names = parts[0].components.keys() if parts else ()
        return Scored(
            [s for p in parts for s in p.smiles],
            np.concatenate([p.score for p in parts]) if parts else np.zeros(0),
            {k: np.concatenate([p.components[k] for p in parts]) for k in names},
            np.concatenate([p.log_w for p in parts]) if parts else np.zeros(0),
        )


def score_trees(trees: Sequence[Tree], vocab: Vocabulary, score_fn: ScoreFn | None) -> Scored:
    """Assemble ``trees`` (canonical SMILES) and, with a ``score_fn``, score them and add log W(x);
    without one the scores and log W are zeros (generation scores later, after de-duplication)."""
    smiles = [tree_smiles(tr, vocab) for tr in trees]
    if score_fn is None or not smiles:
        return Scored(smiles, np.zeros(len(smiles)), {}, np.zeros(len(smiles)))
    score, components = score_fn(smiles)
    log_w = np.array([log_symmetry_weight(tr, vocab) for tr in trees])
    return Scored(smiles, np.asarray(score, dtype=np.float64), dict(components), log_w)


class ConfigReward:
    """The reward of a run config as a picklable score function (a worker rebuilds it from the config)."""

    def __init__(self, cfg: Any, properties: Sequence[str] = ()) -> None:
        self.cfg = cfg
        self.properties = tuple(properties)  # also computed, as PROPERTY_PREFIX + name components
        self._reward = None

    @property
    def reward(self):  # -> molgfn.reward.Reward, built on first use
        if self._reward is None:
            self._reward = self.cfg.build_reward()
        return self._reward

    @property
    def min_score(self) -> float:
        return self.reward.min_score

    def __call__(self, smiles: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        result = self.reward.score(smiles)
        components = dict(result.transformed)
        for term in self.reward.terms:  # an expensive oracle: its raw value, and whether it was paid now
            if getattr(term.component, "expensive", False):
                components[f"{term.name}_raw"] = result.raw[term.name]
                components[f"{term.name}_cached"] = np.asarray(term.component.last_cached, dtype=np.float64)
        if self.properties:
            components.update(self._properties(smiles, result))
        return np.asarray(result.score, dtype=np.float64), components

    def _properties(self, smiles: list[str], result: Any) -> dict[str, np.ndarray]:
        from molgfn.chem.molecules import ALERT_CATALOGS, MolBatch
        from molgfn.reward.components import Alerts, Descriptor
        from molgfn.reward.properties import compute_properties, remember

        names = [n for n in self.properties if n != "alerts"]
        for term in self.reward.terms:  # the reward's own raw QED, SA, MW ...: the same RDKit functions
            if isinstance(term.component, Descriptor) and term.kind in names:
                remember(term.kind, smiles, result.raw[term.name])
            elif isinstance(term.component, Alerts) and "alerts" in self.properties:
                if set(term.component.catalogs) == set(ALERT_CATALOGS):  # recorded only when paid for anyway
                    remember("alerts", smiles, result.raw[term.name])
                    names.append("alerts")
        values = compute_properties(MolBatch.parse(smiles), names)
        return {PROPERTY_PREFIX + name: v for name, v in values.items()}

    def __getstate__(self) -> dict:
        return {
            "cfg": self.cfg,
            "properties": self.properties,
            "_reward": None,
        }  # a worker builds its own (proxy loaded there)
