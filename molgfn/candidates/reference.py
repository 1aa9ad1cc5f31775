"""A reference (training) set of molecules: its canonical SMILES, for novelty, and its Morgan
fingerprints, for the nearest training molecule of each generated one.

Fingerprints are Morgan radius 2, 2048 bits (ECFP4-like), compared by Tanimoto similarity with RDKit's
``BulkTanimotoSimilarity``; the reference fingerprints are computed once per set, when first needed (and
the last set is memoised, so a dashboard re-exporting against the same training set does not recompute
them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from molgfn.chem.molecules import MolBatch

NEAREST_RADIUS = 2
NEAREST_FP_SIZE = 2048
_GENERATOR = rdFingerprintGenerator.GetMorganGenerator(radius=NEAREST_RADIUS, fpSize=NEAREST_FP_SIZE)


class ReferenceSet:
    """Canonical SMILES and fingerprints of the valid molecules of ``smiles`` (invalid ones are skipped:
    the training set was standardised when the proxy was trained)."""

    _last: tuple[tuple[str, ...], ReferenceSet] | None = None

    def __init__(self, smiles: Sequence[str]) -> None:
        batch = MolBatch.parse(list(smiles))
        mols = [m for m in batch.mols if m is not None]
        self._mols = mols
        self.smiles: list[str] = [Chem.MolToSmiles(m) for m in mols]
        self.canonical: frozenset[str] = frozenset(self.smiles)
        self._fingerprints: list | None = None

    @property
    def fingerprints(self) -> list:
        """Morgan fingerprints of the reference molecules, computed on first use (novelty needs none)."""
        if self._fingerprints is None:
            self._fingerprints = [_GENERATOR.GetFingerprint(m) for m in self._mols]
        return self._fingerprints

    @classmethod
    def of(cls, smiles: Sequence[str] | ReferenceSet) -> ReferenceSet:
        """The reference set of ``smiles``, reusing the previous one when called with the same SMILES."""
        if isinstance(smiles, ReferenceSet):
            return smiles
        key = tuple(smiles)
        if cls._last is None or cls._last[0] != key:
            cls._last = (key, cls(key))
        return cls._last[1]

    def __len__(self) -> int:
        return len(self.smiles)

    def is_novel(self, canonical: Sequence[str | None]) -> np.ndarray:
        """True where a canonical SMILES is not in the set (False for None, an invalid molecule)."""
        return np.array([c is not None and c not in self.canonical for c in canonical], dtype=bool)

    def nearest(self, mols: Sequence[Chem.Mol | None]) -> tuple[list[str], np.ndarray]:
        """For each molecule, the most similar reference molecule (canonical SMILES; the first one on a
        tie) and that Tanimoto similarity; '' and NaN for an invalid molecule or an empty set."""
        names = [""] * len(mols)
        similarity = np.full(len(mols), np.nan)
        if not self.fingerprints:
            return names, similarity
        for i, mol in enumerate(mols):
            if mol is None:
                continue
            sims = DataStructs.BulkTanimotoSimilarity(_GENERATOR.GetFingerprint(mol), self.fingerprints)
            best_similarity = max(sims)
            names[i] = self.smiles[sims.index(best_similarity)]
            similarity[i] = best_similarity
        return names, similarity


def canonical_smiles(mols: Sequence[Chem.Mol | None]) -> list[str | None]:
    """RDKit canonical SMILES of each molecule, None for None."""
    return [Chem.MolToSmiles(m) if m is not None else None for m in mols]
