"""Molecules as RDKit sees them: a batch of SMILES parsed once, and per-molecule RDKit values.

:class:`MolBatch` is the batch type every reward component, filter and property table shares;
:func:`per_molecule` applies an RDKit function to each molecule of a batch (NaN where it has no value),
with a bounded memo and, for the slow descriptors, worker processes. ``DESCRIPTORS`` names the RDKit
function behind each descriptor kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import QED, Crippen, Descriptors, FilterCatalog, rdMolDescriptors
from rdkit.Contrib.SA_Score import sascorer


@dataclass(frozen=True)
class MolBatch:
    """A batch of SMILES parsed once: ``mols[i]`` is None where ``smiles[i]`` is not a valid molecule.

    ``smiles[i]`` is the input's first whitespace-separated token (RDKit reads any text after
    whitespace as a name), which is what models and plugins receive: one SMILES, no spaces or newlines.
    """

    smiles: list[str]
    mols: list[Chem.Mol | None]

    @classmethod
    def parse(cls, smiles: Sequence[str]) -> MolBatch:
        """Parse with RDKit (sanitised); unparsable, empty or non-string entries become None, silently."""
        tokens = [s.split()[0] if isinstance(s, str) and s.split() else "" for s in smiles]
        mols: list[Chem.Mol | None] = []
        block = rdBase.BlockLogs()  # a bad SMILES is an expected outcome here, not log noise
        for token in tokens:
            mol = Chem.MolFromSmiles(token) if token else None
            mols.append(mol if mol is not None and mol.GetNumAtoms() > 0 else None)
        del block
        return cls(tokens, mols)

    @property
    def valid(self) -> np.ndarray:
        return np.array([m is not None for m in self.mols], dtype=bool)

    def __len__(self) -> int:
        return len(self.smiles)


class ValueCache:
    """A bounded SMILES -> value memo for deterministic RDKit components.

    The sampler scores the same small partial molecules over and over, and QED or the PAINS catalogue
    cost milliseconds per drug-sized molecule. Keys are the SMILES as given (not canonicalised), and
    the whole memo is dropped when it reaches ``max_size`` entries (simple, and bounded).
    """

    def __init__(self, max_size: int = 200_000) -> None:
        self.max_size = max_size
        self._values: dict[str, float] = {}

    def get(self, smiles: str) -> float | None:
        return self._values.get(smiles)

    def put(self, smiles: str, value: float) -> None:
        if len(self._values) >= self.max_size:
            self._values.clear()
        self._values[smiles] = value

    def __len__(self) -> int:
        return len(self._values)


def safe_value(fn: Callable[[Chem.Mol], float], mol: Chem.Mol) -> float:
    try:
        return float(fn(mol))
    except Exception:  # noqa: BLE001 - a descriptor failing on one odd molecule must not stop the batch
        return np.nan


def per_molecule(
    batch: MolBatch,
    fn: Callable[[Chem.Mol], float],
    cache: ValueCache | None = None,
    kind: str | None = None,
    workers: int = 0,
) -> np.ndarray:
    """Apply an RDKit function to each valid molecule; NaN for invalid ones or where RDKit raises.

    With ``workers`` > 0 the molecules not in the cache are computed in that many worker processes
    (by ``kind``, see :func:`parallel_values`); the result is the same."""
    out = np.full(len(batch), np.nan)
    todo: dict[str, list[int]] = {}  # each SMILES not in the cache, computed once however often it occurs
    for i, mol in enumerate(batch.mols):
        if mol is None:
            continue
        cached = cache.get(batch.smiles[i]) if cache is not None else None
        if cached is not None:
            out[i] = cached
        else:
            todo.setdefault(batch.smiles[i], []).append(i)
    firsts = [rows[0] for rows in todo.values()]
    if workers > 0 and kind is not None and len(firsts) >= 2 * workers:
        values = parallel_values(kind, list(todo), workers)
    else:
        values = [safe_value(fn, batch.mols[i]) for i in firsts]
    for (smiles, rows), value in zip(todo.items(), values):
        out[rows] = value
        if cache is not None:
            cache.put(smiles, value)
    return out


_POOLS: dict[int, Any] = {}

# structural-alert catalogues of RDKit's FilterCatalog: PAINS A+B+C (Baell & Holloway, J. Med. Chem. 2010),
# Brenk (unwanted groups in screening libraries; Brenk et al., ChemMedChem 2008), NIH (reactive and
# assay-interfering groups; Jadhav et al., J. Med. Chem. 2010)
ALERT_CATALOGS = {
    "pains": FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS,
    "brenk": FilterCatalog.FilterCatalogParams.FilterCatalogs.BRENK,
    "nih": FilterCatalog.FilterCatalogParams.FilterCatalogs.NIH,
}
_CATALOGS: dict[tuple[str, ...], Any] = {}


def alert_catalog(names: Sequence[str]) -> Any:
    """The FilterCatalog of the named catalogues (``ALERT_CATALOGS`` keys), built once per process."""
    key = tuple(sorted(set(names)))
    if key not in _CATALOGS:
        unknown = [n for n in key if n not in ALERT_CATALOGS]
        if unknown:
            raise ValueError(f"unknown alert catalogue {unknown[0]!r}: {', '.join(ALERT_CATALOGS)}")
        params = FilterCatalog.FilterCatalogParams()
        for name in key:
            params.AddCatalog(ALERT_CATALOGS[name])
        _CATALOGS[key] = FilterCatalog.FilterCatalog(params)
    return _CATALOGS[key]


def alert_count(mol: Chem.Mol, names: Sequence[str] = tuple(ALERT_CATALOGS)) -> float:
    """How many alerts of the named catalogues the molecule matches (each catalogue entry once)."""
    return float(len(alert_catalog(names).GetMatches(mol)))


def alert_descriptions(mol: Chem.Mol, names: Sequence[str] = tuple(ALERT_CATALOGS)) -> list[str]:
    """The matched alerts, as 'catalogue: description' (e.g. 'Brenk: hydroxamic_acid')."""
    out = []
    for entry in alert_catalog(names).GetMatches(mol):
        catalogue = entry.GetProp("FilterSet") if "FilterSet" in entry.GetPropList() else ""
        out.append(f"{catalogue}: {entry.GetDescription()}" if catalogue else entry.GetDescription())
    return out


def _worker_pains(mol: Chem.Mol) -> float:
    return 0.0 if alert_catalog(["pains"]).HasMatch(mol) else 1.0


def _worker_function(kind: str) -> Callable[[Chem.Mol], float]:
    if kind == "pains":
        return _worker_pains
    if kind.startswith("alerts:"):
        names = kind.partition(":")[2].split("+")
        return lambda mol: alert_count(mol, names)
    return DESCRIPTORS[kind]


def _worker_values(kind: str, smiles: list[str]) -> list[float]:
    """Runs in a worker process: the raw values of one deterministic RDKit component."""
    fn = _worker_function(kind)
    block = rdBase.BlockLogs()
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        out.append(safe_value(fn, mol) if mol is not None else np.nan)
    del block
    return out


def parallel_values(kind: str, smiles: list[str], workers: int) -> list[float]:
    """Values of a descriptor (or ``pains``) computed in a pool of ``workers`` processes.

    QED and the SA score cost milliseconds per drug-sized molecule, which would dominate a training step;
    while the trainer waits for its reward, the worker processes use every core. The pool is created
    once per process (spawned, so it holds no copy of the trainer's torch state)."""
    import atexit
    import multiprocessing
    import multiprocessing.util
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from molgfn.processes import worker_setup

    chunks = [list(c) for c in np.array_split(np.array(smiles, dtype=object), workers) if len(c)]
    for attempt in (1, 2):
        pool = _POOLS.get(workers)
        if pool is None:
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=worker_setup,
                initargs=(os.getpid(),),
            )
            _POOLS[workers] = pool
            atexit.register(pool.shutdown, wait=False, cancel_futures=True)
            # a multiprocessing worker (the trainer's scoring worker) runs no atexit handlers: its exit
            # would wait forever for this pool's processes unless the pool is shut down first, before the
            # queues it writes to are closed (their finalizers have priority 10)
            multiprocessing.util.Finalize(
                None, pool.shutdown, kwargs={"cancel_futures": True}, exitpriority=100
            )
        try:
            out: list[float] = []
            for part in pool.map(_worker_values, [kind] * len(chunks), chunks):
                out.extend(part)
            return out
        except BrokenProcessPool:
            # its workers died (they die with the thread that started them: a finished dashboard script
            # run, say); start a new pool once
            _POOLS.pop(workers, None)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# kind -> the RDKit function computing its raw value
DESCRIPTORS: dict[str, Callable[[Chem.Mol], float]] = {
    # Bickerton et al., Nat. Chem. 2012, weighted QED with the mean weights; in [0, 1]
    "qed": QED.qed,
    # Ertl & Schuffenhauer, J. Cheminf. 2009; RDKit Contrib sascorer; 1 (easy) .. 10 (hard)
    "sa": sascorer.calculateScore,
    # average molecular weight (Da), as in Lipinski's rule of five
    "mw": Descriptors.MolWt,
    # Wildman & Crippen logP
    "logp": Crippen.MolLogP,
    # Ertl topological polar surface area (N and O only, RDKit default)
    "tpsa": rdMolDescriptors.CalcTPSA,
}
