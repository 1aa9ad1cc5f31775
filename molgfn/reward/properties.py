"""Per-molecule property columns shared by the export table (:mod:`molgfn.candidates.export`) and the candidate
filters (:mod:`molgfn.candidates.filters`): the same numbers in a CSV column and behind a ``--filters`` threshold.

The five reward descriptors (qed, sa, mw, logp, tpsa) are the reward's own
:class:`molgfn.reward.components.Descriptor` components (same RDKit functions, same per-SMILES memo),
held here once per process so a dashboard that re-filters or re-exports the same molecules pays for
QED and SA once. QED is the costly one and computes MW, logP, TPSA and the (strict) rotatable bonds on
the way (``QED.properties``), so when QED is asked for, those are taken from it rather than computed
again (the same RDKit functions on the same molecule: equal values). Values already known, e.g. a
reward's raw QED of the same molecules, can be handed in with :func:`remember`.

The counts use Lipinski's own definitions (Lipinski et al., Adv. Drug Deliv. Rev. 1997): H-bond donors
= number of N–H and O–H bonds, acceptors = number of N and O atoms, so the ``lipinski`` filter can be
checked by hand from the exported columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import QED, rdMolDescriptors

from molgfn.chem.molecules import MolBatch, ValueCache, alert_count
from molgfn.reward.components import Descriptor

# name -> (meaning, unit); the order is the export table's column order
PROPERTIES: dict[str, tuple[str, str]] = {
    "qed": ("quantitative estimate of drug-likeness (Bickerton et al. 2012, RDKit QED.qed)", "0-1"),
    "sa": (
        "synthetic accessibility score (Ertl & Schuffenhauer 2009, RDKit Contrib sascorer)",
        "1 easy-10 hard",
    ),
    "mw": ("average molecular weight (RDKit Descriptors.MolWt)", "Da"),
    "logp": ("Wildman-Crippen logP (RDKit Crippen.MolLogP)", "log units"),
    "tpsa": ("topological polar surface area, N and O only (RDKit CalcTPSA)", "Å²"),
    "hbd": ("H-bond donors, Lipinski's definition: number of N-H and O-H bonds", "count"),
    "hba": ("H-bond acceptors, Lipinski's definition: number of N and O atoms", "count"),
    "rotatable_bonds": (
        "rotatable bonds (RDKit CalcNumRotatableBonds, strict: amide C-N not counted)",
        "count",
    ),
    "undefined_stereocentres": (
        "stereocentres and stereo double bonds the SMILES leaves unspecified (RDKit FindPotentialStereo): "
        "each one means the molecule is a mixture of stereoisomers until it is assigned",
        "count",
    ),
}
# what a run records per molecule (molgfn.training.runs) and the dashboard filters and sorts on
RUN_PROPERTIES = ("qed", "sa", "mw", "logp", "tpsa", "hbd", "hba", "alerts")
# computed on request, not an export column (the reward's alerts component is, when it has one)
EXTRA_PROPERTIES: dict[str, tuple[str, str]] = {
    "alerts": (
        "structural alerts matched, PAINS + Brenk + NIH (RDKit FilterCatalog; each entry once)",
        "count",
    ),
}
INTEGER_PROPERTIES = ("hbd", "hba", "rotatable_bonds", "undefined_stereocentres")


def undefined_stereocentres(mol: Chem.Mol) -> int:
    """Stereo elements (tetrahedral centres, double bonds) whose configuration the molecule leaves open."""
    return sum(
        1 for info in Chem.FindPotentialStereo(mol) if info.specified == Chem.StereoSpecified.Unspecified
    )


_COUNTS: dict[str, Callable[[Chem.Mol], int]] = {
    "hbd": rdMolDescriptors.CalcNumLipinskiHBD,
    "hba": rdMolDescriptors.CalcNumLipinskiHBA,
    "rotatable_bonds": rdMolDescriptors.CalcNumRotatableBonds,
    "undefined_stereocentres": undefined_stereocentres,
    "alerts": alert_count,
}
_DESCRIPTORS = {name: Descriptor(name) for name in ("qed", "sa", "mw", "logp", "tpsa")}
_COUNT_CACHES = {name: ValueCache() for name in _COUNTS}


def compute_properties(batch: MolBatch, names: Sequence[str] = tuple(PROPERTIES)) -> dict[str, np.ndarray]:
    """The named properties of every molecule of ``batch`` as float arrays, NaN for invalid molecules
    (integer properties too: NaN needs a float)."""
    if "qed" in names:
        _qed_with_its_properties(batch)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in _DESCRIPTORS:
            out[name] = _DESCRIPTORS[name].compute(batch)
        elif name in _COUNTS:
            out[name] = _count(batch, _COUNTS[name], _COUNT_CACHES[name])
        else:
            raise KeyError(f"unknown property {name!r}; known: {', '.join([*PROPERTIES, *EXTRA_PROPERTIES])}")
    return out


def _count(batch: MolBatch, fn: Callable[[Chem.Mol], int], cache: ValueCache) -> np.ndarray:
    values = np.full(len(batch), np.nan)
    for i, mol in enumerate(batch.mols):
        if mol is None:
            continue
        cached = cache.get(batch.smiles[i])
        if cached is None:
            cached = float(fn(mol))
            cache.put(batch.smiles[i], cached)
        values[i] = cached
    return values


def _cache(name: str) -> ValueCache:
    return _DESCRIPTORS[name].cache if name in _DESCRIPTORS else _COUNT_CACHES[name]


def clear_memo() -> None:
    """Forget every memoised property value (benchmarks; a long-lived process that wants memory back)."""
    for descriptor in _DESCRIPTORS.values():
        descriptor.cache = ValueCache()
    for name in _COUNT_CACHES:
        _COUNT_CACHES[name] = ValueCache()


def remember(name: str, smiles: Sequence[str], values: Sequence[float]) -> None:
    """Memoise known values of property ``name`` (e.g. a reward component's raw QED of the same
    SMILES); NaN values are skipped."""
    cache = _cache(name)
    for s, value in zip(smiles, values):
        if value == value:  # not NaN
            cache.put(s, float(value))


# QED.properties field -> the property it equals (same RDKit function on the same molecule)
_QED_FIELDS = {"MW": "mw", "ALOGP": "logp", "PSA": "tpsa", "ROTB": "rotatable_bonds"}


def _qed_with_its_properties(batch: MolBatch) -> None:
    """Compute QED where it is not memoised, memoising MW, logP, TPSA and rotatable bonds on the way."""
    cache = _cache("qed")
    for smiles, mol in zip(batch.smiles, batch.mols):
        if mol is None or cache.get(smiles) is not None:
            continue
        try:
            properties = QED.properties(mol)
            value = float(QED.qed(mol, qedProperties=properties))
        except Exception:  # noqa: BLE001 - left to the per-property pass, which records NaN
            continue
        cache.put(smiles, value)
        for field, name in _QED_FIELDS.items():
            _cache(name).put(smiles, float(getattr(properties, field)))
