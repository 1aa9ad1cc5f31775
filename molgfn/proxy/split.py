"""Train/valid/test splits and held-out metrics.

The default split is by Bemis–Murcko scaffold: every molecule sharing a scaffold lands in one part,
so held-out metrics measure how the proxy extrapolates to new chemotypes — which is what a generator
asks of it — rather than how it interpolates between close analogues (a random split flatters).
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold
from scipy.stats import spearmanr

from molgfn.proxy.options import SPLITS  # noqa: F401

PARTS = ("train", "valid", "test")


def murcko_scaffold(smiles: str) -> str:
    """Canonical Bemis–Murcko scaffold SMILES ('' for acyclic molecules, which then share one group)."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return ""
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def split_indices(
    smiles: list[str],
    kind: str = "scaffold",
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> dict[str, np.ndarray]:
    """Indices of the train, valid and test parts.

    Scaffold split (deterministic for a seed): scaffold groups larger than half the test size go to
    train first (so one big series cannot swallow the held-out parts), the other groups follow in a
    seeded random order; groups fill train, then valid, then test. Random split: a seeded permutation.
    """
    if kind not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {kind!r}")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1; got {fractions!r}")
    n = len(smiles)
    rng = np.random.default_rng(seed)
    n_train = int(round(fractions[0] * n))
    n_valid = int(round(fractions[1] * n))
    if kind == "random":
        order = rng.permutation(n)
        parts = [order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]]
    else:
        groups: dict[str, list[int]] = {}
        for i, smi in enumerate(smiles):
            groups.setdefault(murcko_scaffold(smi), []).append(i)
        n_test = n - n_train - n_valid
        sets = sorted(groups.values(), key=lambda g: g[0])  # first-seen order: independent of dict order
        big = [g for g in sets if len(g) > n_test / 2]
        small = [g for g in sets if len(g) <= n_test / 2]
        small = [small[i] for i in rng.permutation(len(small))]
        big.sort(key=len, reverse=True)
        parts = [[], [], []]
        for group in big + small:
            if len(parts[0]) + len(group) <= n_train:
                parts[0].extend(group)
            elif len(parts[1]) + len(group) <= n_valid:
                parts[1].extend(group)
            else:
                parts[2].extend(group)
    return {name: np.sort(np.asarray(part, dtype=np.int64)) for name, part in zip(PARTS, parts)}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and Spearman ρ of predictions against measured labels."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    residual = y_pred - y_true
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    rho = spearmanr(y_true, y_pred).statistic if len(y_true) > 2 else float("nan")
    return {
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "r2": float(1.0 - np.sum(residual**2) / total) if total > 0 else float("nan"),
        "spearman": float(rho),
        "n": int(len(y_true)),
    }
