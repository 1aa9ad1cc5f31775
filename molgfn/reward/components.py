"""Reward components: each computes one raw value per molecule for a batch of SMILES.

A batch is parsed once (:class:`MolBatch`) and shared by all components of a reward. A component
returns a float array with NaN where it has no value (an unparsable SMILES, or a descriptor RDKit
could not compute); the transform then maps NaN to 0. Components never raise for a bad molecule;
they raise :class:`~molgfn.errors.MolgfnError` for a bad configuration or a failing plugin.
The plugin components (``python``, ``command``) live in :mod:`molgfn.reward.plugins`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import FilterCatalog, rdFingerprintGenerator

from molgfn.chem.molecules import (
    ALERT_CATALOGS,
    DESCRIPTORS,
    MolBatch,
    ValueCache,
    alert_catalog,
    alert_count,
    per_molecule,
)
from molgfn.errors import MolgfnError
from molgfn.resources import PROXIES
from molgfn.reward._config import Table
from molgfn.reward.kinds import register_kind


class Component(Protocol):
    """Computes raw values (float array, NaN where undefined) for every molecule of a batch."""

    kind: str

    def compute(self, batch: MolBatch) -> np.ndarray: ...


class Descriptor:
    """An RDKit descriptor: qed, sa, mw, logp, tpsa (see ``DESCRIPTORS`` for the exact functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.cache = ValueCache()
        self.workers = 0  # set from reward.workers

    def compute(self, batch: MolBatch) -> np.ndarray:
        return per_molecule(batch, DESCRIPTORS[self.kind], self.cache, self.kind, self.workers)


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
        return per_molecule(batch, fn, self.cache, "pains", self.workers)


class Alerts:
    """Number of structural alerts the molecule matches in RDKit's FilterCatalog catalogues ``catalogs``
    (``pains``: PAINS A+B+C, Baell & Holloway 2010; ``brenk``: Brenk et al. 2008; ``nih``: Jadhav et al.
    2010), each catalogue entry counted once. 0 is clean; the default transform gives 1, 0.5 and 0 for
    0, 1 and 2 or more alerts."""

    kind = "alerts"

    def __init__(self, catalogs: Sequence[str] = tuple(ALERT_CATALOGS)) -> None:
        self.catalogs = tuple(sorted(set(catalogs)))
        alert_catalog(self.catalogs)  # a bad name fails here; built once per process
        self.cache = ValueCache()
        self.workers = 0  # set from reward.workers

    def _count(self, mol: Chem.Mol) -> float:
        return alert_count(mol, self.catalogs)

    def compute(self, batch: MolBatch) -> np.ndarray:
        return per_molecule(batch, self._count, self.cache, "alerts:" + "+".join(self.catalogs), self.workers)


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
        return per_molecule(batch, self._max_similarity, self.cache)


class Predictor(Protocol):
    """What the proxy component needs from a model: :meth:`molgfn.proxy.Proxy.predict`'s signature."""

    def predict(self, smiles: list[str]) -> tuple[np.ndarray, np.ndarray]: ...


ACQUISITIONS = ("lcb", "ucb", "ei")


class ProxyActivity:
    """Predicted activity (e.g. pK) from the learned proxy, as one of three acquisitions of its ensemble
    mean and spread: ``lcb`` (default) ``mean - kappa * std``, a pessimistic score that penalises molecules
    on which the ensemble disagrees (``kappa = 0``: the mean); ``ucb`` ``mean + kappa * std``, optimism in
    the face of uncertainty (active learning); ``ei`` the expected improvement over ``best`` under a
    normal predictive distribution, ``(mean - best) Φ(z) + std φ(z)`` with ``z = (mean - best) / std``.
    Only valid molecules are sent to the model, in one call.
    """

    kind = "proxy"

    def __init__(
        self,
        model: Predictor,
        kappa: float = 0.0,
        name: str = "proxy",
        acquisition: str = "lcb",
        best: float | None = None,
    ) -> None:
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"proxy model for {name!r} has no predict() method")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if acquisition == "ei" and best is None:
            raise ValueError("acquisition 'ei' needs 'best' (the best label so far)")
        self.model = model
        self.kappa = kappa
        self.name = name
        self.acquisition = acquisition
        self.best = best

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
        out[index] = acquire(mean, std, self.acquisition, self.kappa, self.best)
        return out


def acquire(
    mean: np.ndarray, std: np.ndarray, acquisition: str = "lcb", kappa: float = 0.0, best: float | None = None
) -> np.ndarray:
    """An acquisition of predictive means and spreads (see :class:`ProxyActivity`)."""
    if acquisition == "lcb":
        return mean - kappa * std if kappa else mean
    if acquisition == "ucb":
        return mean + kappa * std
    from scipy.stats import norm

    gain = mean - float(best)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = gain / std
        ei = gain * norm.cdf(z) + std * norm.pdf(z)
    return np.where(std > 0, ei, np.maximum(gain, 0.0))


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


def _descriptor_builder(kind: str):
    def build(table: Table, name: str, base_dir: Path | None) -> Descriptor:
        return Descriptor(kind)

    return build


def _pains_from_config(table: Table, name: str, base_dir: Path | None) -> Pains:
    return Pains()


def _alerts_from_config(table: Table, name: str, base_dir: Path | None) -> Alerts:
    catalogs = table.strings("catalogs") if table.has("catalogs") else list(ALERT_CATALOGS)
    unknown = [c for c in catalogs if c not in ALERT_CATALOGS]
    if unknown or not catalogs:
        raise table.error(
            "catalogs", f"must be a non-empty list of {', '.join(ALERT_CATALOGS)} (got {catalogs!r})"
        )
    return Alerts(catalogs)


def _similarity_from_config(table: Table, name: str, base_dir: Path | None) -> Similarity:
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
    acquisition = table.string("acquisition", "lcb", choices=ACQUISITIONS)
    best = table.number("best", None) if table.has("best") else None
    if acquisition == "ei" and best is None:
        raise table.error("best", "acquisition 'ei' needs 'best', the best label so far")
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
        if not path.is_file() and str(value) in PROXIES:  # "default": the shipped proxy
            path = PROXIES[str(value)]
        if not path.is_file():
            raise table.error("path", f"proxy file not found: {path}")
        model = load_proxy(path)
    return ProxyActivity(model, kappa=kappa, name=name, acquisition=acquisition, best=best)


# the built-in kinds, in the order messages list them (the plugins register python and command)
register_kind("proxy", help="predicted activity (pK) of a trained proxy")(_proxy_from_config)
for _kind, _help in (
    ("qed", "drug-likeness QED (Bickerton et al. 2012), in [0, 1]"),
    ("sa", "synthetic accessibility score (Ertl & Schuffenhauer 2009), 1 (easy) .. 10 (hard)"),
    ("mw", "average molecular weight, Da"),
    ("logp", "Wildman-Crippen logP"),
    ("tpsa", "topological polar surface area, square angstrom"),
):
    register_kind(_kind, unit_interval=_kind == "qed", help=_help)(_descriptor_builder(_kind))
register_kind("pains", unit_interval=True, help="1 if no PAINS alert matches, else 0")(_pains_from_config)
register_kind(
    "alerts",
    help="number of structural alerts matched (PAINS, Brenk, NIH: option catalogs)",
    default_transform={"kind": "linear", "low": 0.0, "high": 2.0, "reverse": True},
)(_alerts_from_config)
register_kind("similarity", unit_interval=True, help="maximum Tanimoto similarity to reference molecules")(
    _similarity_from_config
)
