"""Choosing a batch from a pool: the best acquisition first, never a molecule already labelled, and a
diversity rule within the batch (RDKit's MaxMin picker, or a Tanimoto ceiling)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fingerprints(smiles: Sequence[str]) -> list:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]


def select_batch(
    smiles: Sequence[str],
    n: int,
    scores: Sequence[float] | None = None,
    rule: str = "ceiling",
    max_similarity: float = 0.7,
    seed: int = 0,
) -> tuple[list[int], dict[str, int]]:
    """Indices of at most ``n`` molecules of ``smiles`` (distinct, already filtered) and a note.

    - ``ceiling``: by decreasing score, a molecule joins unless its Tanimoto similarity (Morgan r2) to
      one already in the batch exceeds ``max_similarity``; if fewer than ``n`` pass, the best of the
      others fill the batch (counted in the note as ``relaxed``).
    - ``maxmin``: RDKit's MaxMin picker among the best ``3 n`` by score, starting from the best.
    - ``none``: the ``n`` best scores.
    Without scores (the start set) ``maxmin`` picks among the whole pool and ``ceiling`` keeps pool order.
    """
    from rdkit import DataStructs
    from rdkit.SimDivFilters.rdSimDivPickers import MaxMinPicker

    count = len(smiles)
    if count == 0 or n <= 0:
        return [], {"relaxed": 0}
    values = np.zeros(count) if scores is None else np.nan_to_num(np.asarray(scores, float), nan=-np.inf)
    order = [int(i) for i in np.argsort(-values, kind="stable")]
    if rule == "none" or count <= n and rule != "ceiling":
        return order[:n], {"relaxed": 0}
    if rule == "maxmin":
        top = order if scores is None else order[: 3 * n]
        fps = fingerprints([smiles[i] for i in top])
        if len(top) <= n:
            return top, {"relaxed": 0}
        first = [] if scores is None else [0]
        picks = MaxMinPicker().LazyBitVectorPick(fps, len(fps), n, firstPicks=first, seed=seed)
        chosen = [top[i] for i in picks]
        return sorted(chosen, key=lambda i: -values[i]), {"relaxed": 0}
    fps = fingerprints(smiles)
    chosen: list[int] = []
    for i in order:
        if len(chosen) == n:
            break
        if (
            not chosen
            or max(DataStructs.BulkTanimotoSimilarity(fps[i], [fps[j] for j in chosen])) <= max_similarity
        ):
            chosen.append(i)
    relaxed = 0
    if len(chosen) < n:
        taken = set(chosen)
        for i in order:
            if len(chosen) == n:
                break
            if i not in taken:
                chosen.append(i)
                relaxed += 1
    return chosen, {"relaxed": relaxed}
