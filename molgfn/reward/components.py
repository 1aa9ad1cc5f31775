"""Reward components: each computes one raw value per molecule for a batch of SMILES.

A batch is parsed once (:class:`MolBatch`) and shared by all components of a reward. A component
returns a float array with NaN where it has no value (an unparsable SMILES, or a descriptor RDKit
could not compute); the transform then maps NaN to 0. Components never raise for a bad molecule;
they raise :class:`~molgfn.errors.MolgfnError` for a bad configuration or a failing plugin.
The plugin components (``python``, ``command``) live in :mod:`molgfn.reward.plugins`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import QED, Crippen, Descriptors, FilterCatalog, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Contrib.SA_Score import sascorer

from molgfn.errors import MolgfnError
from molgfn.reward._config import Table


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


class Component(Protocol):
    """Computes raw values (float array, NaN where undefined) for every molecule of a batch."""

    kind: str

    def compute(self, batch: MolBatch) -> np.ndarray: ...


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


def _safe(fn: Callable[[Chem.Mol], float], mol: Chem.Mol) -> float:
    try:
        return float(fn(mol))
    except Exception:  # noqa: BLE001 - a descriptor failing on one odd molecule must not stop the batch
        return np.nan


def _per_molecule(
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
        values = [_safe(fn, batch.mols[i]) for i in firsts]
    for (smiles, rows), value in zip(todo.items(), values):
        out[rows] = value
        if cache is not None:
            cache.put(smiles, value)
    return out


_POOLS: dict[int, Any] = {}
_WORKER_PAINS: list = []


def _worker_pains(mol: Chem.Mol) -> float:
    if not _WORKER_PAINS:
        params = FilterCatalog.FilterCatalogParams()
        params.AddCatalog(FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
        _WORKER_PAINS.append(FilterCatalog.FilterCatalog(params))
    return 0.0 if _WORKER_PAINS[0].HasMatch(mol) else 1.0


def _worker_values(kind: str, smiles: list[str]) -> list[float]:
    """Runs in a worker process: the raw values of one deterministic RDKit component."""
    fn = _worker_pains if kind == "pains" else DESCRIPTORS[kind]
    block = rdBase.BlockLogs()
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        out.append(_safe(fn, mol) if mol is not None else np.nan)
    del block
    return out


def parallel_values(kind: str, smiles: list[str], workers: int) -> list[float]:
    """Values of a descriptor (or ``pains``) computed in a pool of ``workers`` processes.

    QED and the SA score cost milliseconds per drug-sized molecule, which would dominate a training step;
    while the trainer waits for its reward, the worker processes use every core. The pool is created
    once per process (spawned, so it holds no copy of the trainer's torch state)."""
    import atexit
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = _POOLS.get(workers)
    if pool is None:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        _POOLS[workers] = pool
        atexit.register(pool.shutdown, wait=False, cancel_futures=True)
    chunks = [list(c) for c in np.array_split(np.array(smiles, dtype=object), workers) if len(c)]
    out: list[float] = []
    for part in pool.map(_worker_values, [kind] * len(chunks), chunks):
        out.extend(part)
    return out


class Descriptor:
    """An RDKit descriptor: qed, sa, mw, logp, tpsa (see ``DESCRIPTORS`` for the exact functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.cache = ValueCache()
        self.workers = 0  # set from reward.workers

    def compute(self, batch: MolBatch) -> np.ndarray:
        return _per_molecule(batch, DESCRIPTORS[self.kind], self.cache, self.kind, self.workers)


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


class Pains:
    """1.0 if the molecule matches no PAINS alert (RDKit FilterCatalog, PAINS A+B+C; Baell & Holloway,
    J. Med. Chem. 2010), else 0.0."""

    kind = "pains"

    def __init__(self) -> None:
        params = FilterCatalog.FilterCatalogParams()
        params.AddCatalog(FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
        self._catalog = FilterCatalog.FilterCatalog(params)
        self.cache = ValueCache()
        self.workers = 0  # set from reward.workers

    def compute(self, batch: MolBatch) -> np.ndarray:
        fn = lambda mol: 0.0 if self._catalog.HasMatch(mol) else 1.0  # noqa: E731
        return _per_molecule(batch, fn, self.cache, "pains", self.workers)


class Similarity:
    """Maximum Tanimoto similarity to a set of reference molecules, on Morgan fingerprints
    (ECFP-like; radius 2 and 2048 bits by default), in [0, 1]."""

    kind = "similarity"

    def __init__(self, reference_smiles: Sequence[str], radius: int = 2, fp_size: int = 2048) -> None:
        self._generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=fp_size)
        refs = MolBatch.parse(reference_smiles)
        bad = [s for s, m in zip(refs.smiles, refs.mols) if m is None]
        if bad:
            raise ValueError(f"invalid reference SMILES {bad[0]!r}")
        if not refs.mols:
            raise ValueError("no reference SMILES")
        self._reference_fps = [self._generator.GetFingerprint(m) for m in refs.mols]
        self.cache = ValueCache()

    def _max_similarity(self, mol: Chem.Mol) -> float:
        fp = self._generator.GetFingerprint(mol)
        return max(DataStructs.BulkTanimotoSimilarity(fp, self._reference_fps))

    def compute(self, batch: MolBatch) -> np.ndarray:
        return _per_molecule(batch, self._max_similarity, self.cache)


class Predictor(Protocol):
    """What the proxy component needs from a model: :meth:`molgfn.proxy.Proxy.predict`'s signature."""

    def predict(self, smiles: list[str]) -> tuple[np.ndarray, np.ndarray]: ...


class ProxyActivity:
    """Predicted activity (e.g. pK) from the learned proxy: ``mean - kappa * std`` (``kappa = 0``: the mean).

    A positive ``kappa`` is a pessimistic (lower-confidence-bound) score that penalises molecules on
    which the ensemble disagrees. Only valid molecules are sent to the model, in one call.
    """

    kind = "proxy"

    def __init__(self, model: Predictor, kappa: float = 0.0, name: str = "proxy") -> None:
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"proxy model for {name!r} has no predict() method")
        self.model = model
        self.kappa = kappa
        self.name = name

    def compute(self, batch: MolBatch) -> np.ndarray:
        out = np.full(len(batch), np.nan)
        index = np.flatnonzero(batch.valid)
        if index.size == 0:
            return out
        mean, std = self.model.predict([batch.smiles[i] for i in index])
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if mean.shape != (index.size,) or std.shape != (index.size,):
            raise MolgfnError(
                f"reward component {self.name!r}: proxy returned {mean.size} means and {std.size} stds "
                f"for {index.size} molecules"
            )
        out[index] = mean - self.kappa * std if self.kappa else mean
        return out


def load_proxy(path: Path) -> Predictor:
    """Load a saved proxy with :meth:`molgfn.proxy.Proxy.load` (imported here, lazily: torch is heavy)."""
    try:
        from molgfn.proxy import Proxy
    except ImportError as exc:  # the proxy package is optional for rewards that do not use it
        raise MolgfnError(f"cannot load proxy {path}: molgfn.proxy is not available ({exc})") from exc
    return Proxy.load(path)


def read_smiles_file(path: Path) -> list[str]:
    """Reference SMILES from a file: the first whitespace-separated token of each line; blank lines and
    lines starting with '#' are skipped. A CSV with a ``smiles`` column (any case) is read with pandas."""
    if path.suffix.lower() in (".csv", ".tsv"):
        import pandas as pd

        frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        columns = [c for c in frame.columns if str(c).lower() == "smiles"]
        if not columns:
            raise ValueError(f"no 'smiles' column (columns: {', '.join(map(str, frame.columns))})")
        return [str(s) for s in frame[columns[0]].dropna()]
    lines = path.read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")]


def resolve_path(value: str | Path, base_dir: Path | None) -> Path:
    """A config path: absolute as given, relative to ``base_dir`` (the config file's folder) or the cwd."""
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def component_from_config(kind: str, table: Table, name: str, base_dir: Path | None) -> Component:
    """Build the component of ``kind`` from the parameters in ``table`` (common keys already read)."""
    from molgfn.reward import plugins

    if kind in DESCRIPTORS:
        return Descriptor(kind)
    if kind == "pains":
        return Pains()
    if kind == "similarity":
        return _similarity_from_config(table, base_dir)
    if kind == "proxy":
        return _proxy_from_config(table, name, base_dir)
    if kind == "python":
        return plugins.PythonPlugin.from_config(table, name)
    if kind == "command":
        return plugins.CommandPlugin.from_config(table, name, base_dir)
    raise MolgfnError(f"{table.field('kind')}: unhandled component kind {kind!r}")  # pragma: no cover


def _similarity_from_config(table: Table, base_dir: Path | None) -> Similarity:
    radius = table.integer("radius", 2, ge=1)
    fp_size = table.integer("fp_size", 2048, ge=64)
    has_inline, has_file = table.has("smiles"), table.has("file")
    if has_inline == has_file:
        raise MolgfnError(f"{table.path}: give exactly one of 'smiles' (an array) or 'file' (a path)")
    if has_inline:
        key, refs = "smiles", table.strings("smiles")
    else:
        key = "file"
        path = resolve_path(table.string("file"), base_dir)
        if not path.is_file():
            raise table.error("file", f"reference file not found: {path}")
        try:
            refs = read_smiles_file(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise table.error("file", f"cannot read reference file {path}: {exc}") from exc
    try:
        return Similarity(refs, radius=radius, fp_size=fp_size)
    except ValueError as exc:
        raise table.error(key, str(exc)) from exc


def _proxy_from_config(table: Table, name: str, base_dir: Path | None) -> ProxyActivity:
    kappa = table.number("kappa", 0.0, ge=0.0)
    has_path, has_model = table.has("path"), table.has("model")
    if has_path == has_model:
        raise MolgfnError(
            f"{table.path}: give exactly one of 'path' (a saved proxy file) or 'model' (a Python object "
            "with predict(); not expressible in TOML)"
        )
    model: Any
    if has_model:
        model = table.raw("model")
        if not callable(getattr(model, "predict", None)):
            raise table.error("model", f"must have a predict(smiles) method, got {type(model).__name__}")
    else:
        value = table.raw("path")
        if not isinstance(value, (str, Path)):
            raise table.error("path", f"must be a string, got {value!r}")
        path = resolve_path(value, base_dir)
        if not path.is_file():
            raise table.error("path", f"proxy file not found: {path}")
        model = load_proxy(path)
    return ProxyActivity(model, kappa=kappa, name=name)
