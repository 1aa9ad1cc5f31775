"""The shipped reward, as a ``[reward]`` table (light: no RDKit or torch, for config validation)."""

from __future__ import annotations

from molgfn.resources import DEFAULT_PROXY as DEFAULT_PROXY_PATH

# scores below this floor count as it in the log-reward (see molgfn.reward.aggregate.log_reward)
DEFAULT_MIN_SCORE = 1e-4

# Structural alerts as a gate (docs/reward.md): out of the mean, the score is multiplied by 1 for a clean
# molecule and by 0 for one matching any PAINS, Brenk or NIH alert.
ALERTS_GATE: dict = {
    "name": "alerts",
    "kind": "alerts",
    "multiply": True,
    "weight": 1.0,
    "transform": {"kind": "step", "threshold": 0.0, "direction": "below"},
}

# The shipped reward: predicted activity (pK 5 -> ~0, 7 -> 0.5, 9 -> ~1), drug-likeness (QED),
# ease of synthesis (SA score: 2 -> ~1, 4 -> 0.5, 6 -> ~0) and a molecular-weight window of 200-500 Da,
# multiplied by a structural-alert gate: a molecule matching any PAINS, Brenk or NIH alert scores 0.
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
        ALERTS_GATE,
    ],
}
