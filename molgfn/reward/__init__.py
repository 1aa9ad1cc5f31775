"""Reward composition: scoring components, desirability transforms, aggregation and the log-reward.

See ``docs/reward.md`` for the ``[reward]`` TOML schema. Public API::

    Reward.from_config(cfg, base_dir=None) -> Reward      # cfg: the [reward] table, validated
    Reward.from_toml(path) -> Reward                      # the [reward] table of a run config file
    reward.score(smiles) -> RewardResult                  # .score, .raw, .transformed, .valid
    log_reward(score, beta, min_score=1e-4) -> ndarray    # beta * log(max(score, min_score))
"""

from __future__ import annotations

from pathlib import Path

from molgfn.reward.aggregate import DEFAULT_MIN_SCORE, log_reward
from molgfn.reward.reward import COMPONENT_KINDS, Reward, RewardResult, RewardTerm
from molgfn.reward.transforms import TRANSFORM_KINDS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROXY_PATH = REPO_ROOT / "models" / "proxy_default.pt"

# The shipped reward: predicted activity (pK 5 -> ~0, 7 -> 0.5, 9 -> ~1), drug-likeness (QED),
# ease of synthesis (SA score: 2 -> ~1, 4 -> 0.5, 6 -> ~0) and a molecular-weight window of 200-500 Da.
DEFAULT_REWARD_CONFIG: dict = {
    "aggregation": "geometric",
    "min_score": DEFAULT_MIN_SCORE,
    "components": [
        {
            "name": "activity",
            "kind": "proxy",
            "path": str(DEFAULT_PROXY_PATH),
            "kappa": 0.0,
            "weight": 1.0,
            "transform": {"kind": "sigmoid", "low": 5.0, "high": 9.0, "k": 0.5},
        },
        {"name": "qed", "kind": "qed", "weight": 0.5, "transform": {"kind": "identity"}},
        {
            "name": "sa",
            "kind": "sa",
            "weight": 0.5,
            "transform": {"kind": "reverse_sigmoid", "low": 2.0, "high": 6.0, "k": 0.5},
        },
        {
            "name": "mw",
            "kind": "mw",
            "weight": 0.5,
            "transform": {"kind": "window", "low": 200.0, "high": 500.0, "softness": 25.0},
        },
    ],
}

__all__ = [
    "COMPONENT_KINDS",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_PROXY_PATH",
    "DEFAULT_REWARD_CONFIG",
    "REPO_ROOT",
    "TRANSFORM_KINDS",
    "Reward",
    "RewardResult",
    "RewardTerm",
    "log_reward",
]
