"""Metrics of a set of generated molecules (docs/architecture.md, "Set metrics"), computed with RDKit.

Definitions (SMILES are canonicalised first; "unique" means unique valid canonical SMILES):

- validity: fraction of SMILES RDKit parses;
- uniqueness: unique / valid;
- novelty (MOSES): fraction of the unique molecules absent from the reference (training) set;
- IntDiv_p (MOSES, Polykovskiy et al. 2020): 1 − mean_i (mean_j T(i, j)^p)^(1/p) over the unique molecules,
  j running over all of them including i itself, T the Tanimoto similarity of Morgan fingerprints
  (radius 2, 1024 bits, as MOSES);
- top-k mean reward over the unique molecules (k = 10, 100, 1000);
- modes: greedily, in descending reward, molecules with reward ≥ threshold whose Tanimoto similarity to
  every mode accepted so far is below 0.7;
- #Circles (Xie et al. 2023, "How much space has been explored?"): greedy sphere exclusion, in the given
  order, keeping a molecule when its Tanimoto distance to every kept one exceeds 0.75;
- unique Bemis–Murcko scaffolds (the empty scaffold of acyclic molecules counts once);
- Pearson correlation between log R(x) and the model's log-probability estimate on held-out molecules.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

RDLogger.DisableLog("rdApp.*")

_MOSES_FP = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
_MODE_FP = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


def canonical(smiles: Sequence[str]) -> list[str | None]:
    """Canonical SMILES, None where RDKit cannot parse."""
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if s else None
        out.append(Chem.MolToSmiles(mol) if mol is not None else None)
    return out


def validity(smiles: Sequence[str]) -> float:
    return float(np.mean([c is not None for c in canonical(smiles)])) if len(smiles) else 0.0


def uniqueness(smiles: Sequence[str]) -> float:
    valid = [c for c in canonical(smiles) if c is not None]
    return len(set(valid)) / len(valid) if valid else 0.0


def novelty(smiles: Sequence[str], reference: Sequence[str]) -> float:
    unique = {c for c in canonical(smiles) if c is not None}
    if not unique:
        return 0.0
    ref = {c for c in canonical(reference) if c is not None}
    return len(unique - ref) / len(unique)


def fingerprints(smiles: Sequence[str], generator=_MOSES_FP) -> list:
    return [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]


def fingerprint_matrix(mols: Sequence[Chem.Mol]) -> np.ndarray:
    """Morgan radius-2, 1024-bit fingerprints (MOSES) as a float32 0/1 matrix."""
    if not mols:
        return np.zeros((0, 1024), dtype=np.float32)
    return np.stack([_MOSES_FP.GetFingerprintAsNumPy(m) for m in mols]).astype(np.float32)


def internal_diversities(bits: np.ndarray, ps: Sequence[int] = (1, 2), block: int = 1024) -> dict[int, float]:
    """MOSES IntDiv_p for several p from one blocked pass over all pairwise Tanimoto similarities
    (self-pairs included, 0/0 counted as similarity 1, as MOSES does).

    The bit counts come from a float32 matrix product (exact: integers below 2**24); the similarities
    and their means are float64, so the result matches MOSES to ~1e-12 rather than float32's ~1e-7."""
    n = len(bits)
    if n == 0:
        return {p: 0.0 for p in ps}
    counts = bits.sum(axis=1, dtype=np.float64)
    per_molecule = {p: np.empty(n) for p in ps}
    for start in range(0, n, block):
        rows = bits[start : start + block]
        inter = (rows @ bits.T).astype(np.float64)
        union = counts[start : start + block, None] + counts[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            sims = np.where(union > 0, inter / union, 1.0)
        for p in ps:
            per_molecule[p][start : start + block] = np.mean(sims**p, axis=1) ** (1.0 / p)
    return {p: float(1.0 - v.mean()) for p, v in per_molecule.items()}


def internal_diversity(smiles: Sequence[str], p: int = 1) -> float:
    """MOSES IntDiv_p over the given molecules (pass unique canonical SMILES)."""
    return internal_diversities(fingerprint_matrix([Chem.MolFromSmiles(s) for s in smiles]), (p,))[p]


def _best_reward(canon: Sequence[str | None], reward: Sequence[float]) -> dict[str, float]:
    best: dict[str, float] = {}
    for c, r in zip(canon, reward):
        if c is not None and (c not in best or r > best[c]):
            best[c] = float(r)
    return best


def top_k_mean(smiles: Sequence[str], reward: Sequence[float], k: int) -> float:
    """Mean reward of the k best unique molecules (fewer if there are fewer)."""
    return _top_k(_best_reward(canonical(smiles), reward), k)


def _top_k(best: dict[str, float], k: int) -> float:
    values = heapq.nlargest(k, best.values())  # linear in the molecules seen: training calls it every step
    return float(np.mean(values)) if values else float("nan")


def modes(
    smiles: Sequence[str], reward: Sequence[float], threshold: float, max_similarity: float = 0.7
) -> list[str]:
    """Greedy modes: descending reward, reward ≥ threshold, Tanimoto < max_similarity to every mode so far."""
    return _modes(_best_reward(canonical(smiles), reward), threshold, max_similarity)


def _modes(
    best: dict[str, float], threshold: float, max_similarity: float = 0.7, fp_of: dict | None = None
) -> list[str]:
    best = {c: r for c, r in best.items() if r >= threshold}
    accepted: list[str] = []
    accepted_fps: list = []
    for c in sorted(best, key=lambda s: (-best[s], s)):
        fp = fp_of[c] if fp_of is not None else _MODE_FP.GetFingerprint(Chem.MolFromSmiles(c))
        if not accepted_fps or max(DataStructs.BulkTanimotoSimilarity(fp, accepted_fps)) < max_similarity:
            accepted.append(c)
            accepted_fps.append(fp)
    return accepted


def circles(smiles: Sequence[str], distance: float = 0.75) -> int:
    """#Circles by greedy sphere exclusion in the given order (Tanimoto distance > ``distance`` to all kept)."""
    return _circles(canonical(smiles), distance)


def _circles(canon: Sequence[str | None], distance: float = 0.75, fp_of: dict | None = None) -> int:
    kept: list = []
    seen: set[str] = set()
    for c in canon:
        if c is None or c in seen:
            continue
        seen.add(c)
        fp = fp_of[c] if fp_of is not None else _MODE_FP.GetFingerprint(Chem.MolFromSmiles(c))
        if not kept or 1.0 - max(DataStructs.BulkTanimotoSimilarity(fp, kept)) > distance:
            kept.append(fp)
    return len(kept)


def scaffolds(smiles: Sequence[str]) -> int:
    """Number of unique Bemis–Murcko scaffolds among the valid molecules."""
    return _scaffolds([c for c in canonical(smiles) if c is not None])


def _scaffolds(canon: Sequence[str]) -> int:
    return len({murcko(Chem.MolFromSmiles(c)) for c in set(canon)})


def murcko(mol: Chem.Mol) -> str:
    """Canonical SMILES of the Bemis–Murcko scaffold, without stereo ('' for an acyclic molecule)."""
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def set_metrics(
    smiles: Sequence[str],
    reward: Sequence[float],
    reference: Sequence[str] = (),
    mode_threshold: float = 0.7,
    top_ks: Sequence[int] = (10, 100, 1000),
) -> dict[str, float]:
    """Every set metric of a batch of generated molecules, in one dict."""
    parsed = [Chem.MolFromSmiles(s) if s else None for s in smiles]
    canon = [Chem.MolToSmiles(m) if m is not None else None for m in parsed]
    mol_of = {c: m for c, m in zip(canon, parsed) if c is not None}
    valid = [c for c in canon if c is not None]
    unique = list(mol_of)
    best = _best_reward(canon, reward)
    diversity = internal_diversities(fingerprint_matrix([mol_of[c] for c in unique]), (1, 2))
    fp_of = {c: _MODE_FP.GetFingerprint(m) for c, m in mol_of.items()}
    out: dict[str, float] = {
        "n": float(len(smiles)),
        "validity": len(valid) / len(smiles) if len(smiles) else 0.0,
        "uniqueness": len(unique) / len(valid) if valid else 0.0,
        "intdiv1": diversity[1],
        "intdiv2": diversity[2],
        "modes": float(len(_modes(best, mode_threshold, fp_of=fp_of))),
        "circles": float(_circles(canon, fp_of=fp_of)),
        "scaffolds": float(len({murcko(m) for m in mol_of.values()})),
    }
    if len(reference):
        ref = {c for c in canonical(reference) if c is not None}
        out["novelty"] = len(set(unique) - ref) / len(unique) if unique else 0.0
    for k in top_ks:
        out[f"top{k}_reward"] = _top_k(best, k)
    return out


class DiscoveryTracker:
    """Running statistics of every molecule sampled so far, for curves against trajectories sampled.

    ``modes`` counts, in order of discovery, molecules with reward ≥ ``threshold`` whose Tanimoto similarity
    (Morgan radius 2, 2048 bits) to every earlier mode is below ``max_similarity`` — the "number of modes
    found" of the GFlowNet literature (Bengio et al. 2021). ``top_k`` and ``diversity_of_top`` look at the
    best reward seen per unique molecule.
    """

    def __init__(self, threshold: float = 0.7, max_similarity: float = 0.7):
        self.threshold = threshold
        self.max_similarity = max_similarity
        self.best: dict[str, float] = {}
        self.mode_fps: list = []
        self.trajectories = 0

    def update(self, smiles: Sequence[str], reward: Sequence[float]) -> None:
        self.trajectories += len(smiles)
        for s, r in zip(smiles, reward):
            r = float(r)
            new = s not in self.best
            if new or r > self.best[s]:
                self.best[s] = r
            if new and r >= self.threshold and s:
                mol = Chem.MolFromSmiles(s)
                if mol is None:
                    continue
                fp = _MODE_FP.GetFingerprint(mol)
                if (
                    not self.mode_fps
                    or max(DataStructs.BulkTanimotoSimilarity(fp, self.mode_fps)) < self.max_similarity
                ):
                    self.mode_fps.append(fp)

    @property
    def modes(self) -> int:
        return len(self.mode_fps)

    @property
    def unique(self) -> int:
        return len(self.best)

    def top_k(self, k: int) -> float:
        return _top_k(self.best, k)

    def diversity_of_top(self, k: int = 1000) -> float:
        """MOSES IntDiv_1 of the k best unique molecules so far."""
        top = heapq.nlargest(k, self.best, key=self.best.__getitem__)
        mols = [m for m in (Chem.MolFromSmiles(s) for s in top) if m is not None]
        return internal_diversities(fingerprint_matrix(mols), (1,))[1]

    def state_dict(self) -> dict:
        return {
            "best": dict(self.best),
            "trajectories": self.trajectories,
            "modes": [DataStructs.BitVectToText(fp) for fp in self.mode_fps],
        }

    def load_state_dict(self, state: dict) -> None:
        self.best = dict(state["best"])
        self.trajectories = state["trajectories"]
        self.mode_fps = [DataStructs.CreateFromBitString(t) for t in state["modes"]]
