"""Reward composition: scoring components, desirability transforms, aggregation and the log-reward.

See ``docs/reward.md`` for the ``[reward]`` TOML schema. Public API::

    Reward.from_config(cfg, base_dir=None) -> Reward      # cfg: the [reward] table, validated
    Reward.from_toml(path) -> Reward                      # the [reward] table of a run config file
    reward.score(smiles) -> RewardResult                  # .score, .raw, .transformed, .valid
    log_reward(score, beta, min_score=1e-4) -> ndarray    # beta * log(max(score, min_score))
"""

from __future__ import annotations

import importlib
from typing import Any

from molgfn.reward.defaults import DEFAULT_MIN_SCORE, DEFAULT_PROXY_PATH, DEFAULT_REWARD_CONFIG

# the rest loads RDKit: imported on first use, so that validating a config stays light
_LAZY = {
    "Reward": "molgfn.reward.reward",
    "RewardResult": "molgfn.reward.reward",
    "RewardTerm": "molgfn.reward.reward",
    "log_reward": "molgfn.reward.aggregate",
    "TRANSFORM_KINDS": "molgfn.reward.transforms",
    "register_kind": "molgfn.reward.kinds",
}

__all__ = [
    "COMPONENT_KINDS",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_PROXY_PATH",
    "DEFAULT_REWARD_CONFIG",
    "TRANSFORM_KINDS",
    "Reward",
    "RewardResult",
    "RewardTerm",
    "log_reward",
    "register_kind",
]


def __getattr__(name: str) -> Any:
    if name == "COMPONENT_KINDS":
        from molgfn.reward.kinds import component_kinds

        return component_kinds()
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'molgfn.reward' has no attribute {name!r}")
