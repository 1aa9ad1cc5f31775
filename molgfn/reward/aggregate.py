"""Aggregation of per-component desirabilities d_i in [0, 1] into one score in [0, 1], and the log-reward.

Weighted geometric mean (default; REINVENT's "geometric_mean")::

    s = prod_i d_i ** (w_i / sum_j w_j) = exp( sum_i w_i log d_i / sum_j w_j )

A zero in any (positively weighted) component gives s = 0: every objective must be met somewhat,
which is what a chemist usually means by "active AND drug-like AND synthesisable".

Weighted arithmetic mean (REINVENT's "arithmetic_mean")::

    s = sum_i w_i d_i / sum_j w_j

which lets a strong component compensate for a failed one. Components with weight 0 are computed and
reported but do not enter either mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from molgfn.reward.defaults import DEFAULT_MIN_SCORE

AGGREGATIONS = ("geometric", "arithmetic")


def _stack(desirabilities: Sequence[np.ndarray], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(desirabilities) != len(weights) or not desirabilities:
        raise ValueError("need one weight per component and at least one component")
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
    d = np.stack([np.asarray(x, dtype=np.float64) for x in desirabilities])  # (components, molecules)
    keep = w > 0
    return d[keep], w[keep] / w[keep].sum()


def geometric_mean(desirabilities: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted geometric mean over components, per molecule; 0 if any weighted component is 0."""
    d, w = _stack(desirabilities, weights)
    with np.errstate(divide="ignore"):
        log_d = np.log(np.clip(d, 0.0, 1.0))  # log 0 = -inf -> exp(-inf) = 0
    # an elementwise sum, not a BLAS product: BLAS may split the work differently from one process to
    # another (threads), and a molecule's score must not depend on where it was computed (tested)
    return np.exp((w[:, None] * log_d).sum(axis=0))


def arithmetic_mean(desirabilities: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted arithmetic mean over components, per molecule."""
    d, w = _stack(desirabilities, weights)
    return (w[:, None] * np.clip(d, 0.0, 1.0)).sum(axis=0)


def aggregate(desirabilities: Sequence[np.ndarray], weights: Sequence[float], method: str) -> np.ndarray:
    """Combine with ``method`` "geometric" or "arithmetic"; the result is in [0, 1]."""
    if method == "geometric":
        return geometric_mean(desirabilities, weights)
    if method == "arithmetic":
        return arithmetic_mean(desirabilities, weights)
    raise ValueError(f"unknown aggregation {method!r}; allowed: {', '.join(AGGREGATIONS)}")


def log_reward(
    score: np.ndarray | float, beta: np.ndarray | float, min_score: float = DEFAULT_MIN_SCORE
) -> np.ndarray:
    """GFlowNet log-reward of a score s in [0, 1] at inverse temperature beta: ``R(x) = s^beta``, i.e.

        log R(x) = beta * log(max(s(x), min_score))

    Raising a [0, 1] score to a power beta is the reward shaping of the fragment-based GFlowNet papers
    (Bengio et al., NeurIPS 2021, R = s^beta; Jain et al., ICML 2023 multi-objective GFlowNets,
    conditioning on beta). It keeps the *ratio* structure that a multiplicative (geometric-mean) score
    has: doubling s multiplies R by 2^beta whatever the other components are, and larger beta
    concentrates the sampler on the best molecules. ``beta * s`` (an exponential reward in s) would
    instead bound R's dynamic range to e^beta and treat s = 0 as nearly as good as s = 0.01.

    ``min_score`` floors s so that log R stays finite for s = 0 (an invalid molecule, or a component at
    0): log R >= beta * log(min_score), e.g. -9.2 beta for 1e-4. NaN scores are treated as 0.
    ``score`` and ``beta`` broadcast (a scalar beta, or one per trajectory).
    """
    s = np.fmax(np.asarray(score, dtype=np.float64), min_score)  # fmax: NaN -> min_score
    return np.asarray(beta, dtype=np.float64) * np.log(s)
