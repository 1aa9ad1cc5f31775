"""Loading assay tables (CSV, TSV, SDF) into a tidy table of standardised molecules and labels.

A proxy is only as good as the table it learns from, and real tables are messy: ChEMBL web exports
use ``;`` and quote every field, salts and charged forms sit beside neutral parents, labels are
missing or written as ``>10000``. :func:`load_assay_table` reads such a table without hand-editing,
standardises every molecule, drops and counts what it cannot use (keeping the dropped rows and the
reason, so a user can see what was lost) and averages duplicate molecules.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger
from rdkit.Chem.MolStandardize import rdMolStandardize

from molgfn.errors import MolgfnError
from molgfn.proxy.options import DELIMITERS, LABEL_COLUMNS, SMILES_COLUMNS, UNITS, UNITS_TO_MOLAR  # noqa: F401

RDLogger.DisableLog("rdApp.*")


@dataclass
class LoadReport:
    """What :func:`load_assay_table` read, kept and dropped.

    ``dropped`` holds the dropped input rows (all their original columns) plus ``row`` (1-based data row
    number in the file, header excluded) and ``reason``.
    """

    path: str
    sha256: str
    file_format: str
    delimiter: str | None
    columns: list[str]
    smiles_col: str
    label_col: str
    units: str | None
    n_rows: int = 0
    n_invalid_smiles: int = 0
    n_missing_label: int = 0
    n_bad_label: int = 0
    n_duplicates_merged: int = 0
    n_molecules: int = 0
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def n_dropped(self) -> int:
        """Rows dropped for any reason (duplicates merged are not dropped)."""
        return self.n_invalid_smiles + self.n_missing_label + self.n_bad_label

    def counts(self) -> dict:
        """The report as plain types (no DataFrame), for metadata and printing."""
        out = asdict(self)
        out.pop("dropped")
        out["n_dropped"] = self.n_dropped
        return out

    def write_dropped(self, path: str | Path) -> Path:
        """Write the dropped rows with their reason as CSV; returns the path."""
        path = Path(path)
        self.dropped.to_csv(path, index=False)
        return path

    def summary(self) -> str:
        """One readable paragraph of counts."""
        units = self.units or "as given"
        return (
            f"read {self.n_rows} rows from {Path(self.path).name} ({self.file_format}"
            f"{', delimiter ' + repr(self.delimiter) if self.delimiter else ''}); "
            f"SMILES column {self.smiles_col!r}, label column {self.label_col!r} (units: {units}); "
            f"dropped {self.n_invalid_smiles} invalid SMILES, {self.n_missing_label} empty labels, "
            f"{self.n_bad_label} non-numeric, non-positive or implausible labels; merged {self.n_duplicates_merged} "
            f"duplicate rows; {self.n_molecules} molecules"
        )


_FRAGMENT_CHOOSER = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
_UNCHARGER = rdMolStandardize.Uncharger()


def standardize_mol(mol: Chem.Mol) -> Chem.Mol | None:
    """Standardise a parsed molecule: cleanup (normalise groups, disconnect metals), keep the largest
    organic fragment, neutralise charges. Returns None when RDKit fails on it."""
    try:
        mol = rdMolStandardize.Cleanup(mol)
        mol = _FRAGMENT_CHOOSER.choose(mol)
        mol = _UNCHARGER.uncharge(mol)
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises many types on odd input; the row is reported, not fatal
        return None
    return mol if mol.GetNumAtoms() > 0 else None


def uncharge_mol(mol: Chem.Mol) -> Chem.Mol | None:
    """Neutralise charges only (the cheap part of :func:`standardize_mol`); None when RDKit fails."""
    try:
        return _UNCHARGER.uncharge(mol)
    except Exception:  # RDKit raises many types on odd input
        return None


def standardize_smiles(smiles: str) -> str | None:
    """Canonical SMILES of the standardised molecule, or None if it cannot be parsed."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        return None
    mol = standardize_mol(mol)
    return Chem.MolToSmiles(mol) if mol is not None else None


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, recorded in the proxy's metadata so the data can be checked later."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")


def _read_raw(path: Path) -> tuple[bytes, bool]:
    """The file's bytes, decompressed when it is gzip (by content, whatever its name); True if it was."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw), True
        except (OSError, EOFError) as exc:
            raise MolgfnError(f"{path}: a damaged gzip file ({exc})") from None
    return raw, False


def _read_text(path: Path) -> str:
    raw, _ = _read_raw(path)
    if raw[:4] == b"PK\x03\x04" or path.suffix.lower() in WORKBOOK_SUFFIXES:
        raise MolgfnError(
            f"{path}: a spreadsheet workbook (or another zip archive), not a text table; save the sheet as "
            "CSV and pass that file"
        )
    if b"\x00" in raw[:65536]:
        raise MolgfnError(f"{path}: binary content, not a text table (CSV, TSV or SDF)")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise MolgfnError(f"{path}: cannot decode the file as text")  # pragma: no cover (latin-1 decodes all)


def detect_delimiter(text: str, suffix: str) -> str:
    """Pick the delimiter of a delimited text table.

    csv.Sniffer on the first lines handles quoted fields with embedded delimiters (ChEMBL exports);
    when it cannot decide, fall back to the file extension (tab for .tsv/.tab, else comma).
    """
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    header = text.splitlines()[0] if text else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best] > 0:
        return best
    return "\t" if suffix in (".tsv", ".tab") else ","


def _read_delimited(path: Path) -> tuple[pd.DataFrame, str]:
    text = _read_text(path)
    if not text.strip():
        raise MolgfnError(f"{path}: the file is empty")
    delimiter = detect_delimiter(text, path.suffix.lower())
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            quotechar='"',
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise MolgfnError(f"{path}: cannot parse as a table with delimiter {delimiter!r}: {exc}") from exc
    header = next(
        csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter, skipinitialspace=True), []
    )
    names = [c.strip() for c in header]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise MolgfnError(
            f"{path}: column name(s) used more than once: {', '.join(repr(c) for c in repeated)}; "
            "rename them so each column has its own name"
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, delimiter


def _read_sdf(path: Path) -> pd.DataFrame:
    """Read an SDF into a table: one row per record, a ``smiles`` column from the structure and one
    column per SD property (properties are read by us, not PandasTools). A record RDKit cannot read
    keeps an empty SMILES, so it is dropped and reported like an invalid SMILES."""
    rows = []
    supplier = Chem.SDMolSupplier(str(path), sanitize=True, removeHs=True)
    for index in range(len(supplier)):
        try:
            mol = supplier[index]
        except Exception:
            mol = None
        if mol is None:
            rows.append({"smiles": ""})
            continue
        row = {name: str(mol.GetProp(name)) for name in mol.GetPropNames()}
        if mol.HasProp("_Name") and mol.GetProp("_Name"):
            row.setdefault("name", mol.GetProp("_Name"))
        row["smiles"] = Chem.MolToSmiles(mol)
        rows.append(row)
    if not rows:
        raise MolgfnError(f"{path}: no molecule records found in the SDF file")
    frame = pd.DataFrame(rows).fillna("")
    return frame


def find_column(columns: list[str], candidates: list[str]) -> str | None:
    """First column whose name matches a candidate (case- and surrounding-space-insensitive)."""
    lowered = {c.strip().lower(): c for c in reversed(columns)}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


def _resolve_column(
    columns: list[str], given: str | None, candidates: list[str], what: str, path: Path
) -> str:
    if given is not None:
        if given in columns:
            return given
        match = find_column(columns, [given.strip().lower()])
        if match is None:
            raise MolgfnError(f"{path}: {what} column {given!r} not found; columns are: {', '.join(columns)}")
        return match
    match = find_column(columns, candidates)
    if match is None:
        option = "--smiles-col" if what == "SMILES" else "--label-col"
        raise MolgfnError(
            f"{path}: no recognisable {what} column; columns found: {', '.join(columns)}. "
            f"Name it with {option} (recognised names: {', '.join(candidates)})"
        )
    return match


def _parse_label(text: str, units: str | None) -> tuple[float | None, str | None]:
    """Parse one label cell; returns (value on the output scale, None) or (None, drop reason)."""
    text = text.strip()
    if text == "" or text.lower() in ("na", "nan", "n/a", "none", "null", "-"):
        return None, "empty label"
    try:
        value = float(text)
    except ValueError:
        return None, f"non-numeric label {text!r}"
    if not math.isfinite(value):
        return None, f"non-numeric label {text!r}"
    if units is None:
        if abs(value) > MAX_ABS_LABEL:
            return None, f"implausible label {text!r} (beyond ±{MAX_ABS_LABEL:g}; declare --units)"
        return value, None
    if units == "p":
        pk = value
    else:
        if value <= 0:
            return None, f"non-positive concentration {text!r} (cannot take -log10)"
        pk = -math.log10(value * UNITS_TO_MOLAR[units])
    if not PK_RANGE[0] <= pk <= PK_RANGE[1]:
        shown = f"{text} {units} is pK {pk:.1f}" if units != "p" else f"pK {text}"
        return None, f"implausible label: {shown}, outside pK {PK_RANGE[0]:g}..{PK_RANGE[1]:g}"
    return pk, None


# plausible labels (docs/proxy.md): a pK from 0 (1 M) to 15 (1 fM) on a declared p-scale or concentration
# unit; without a declared scale only magnitudes that training's float32 arithmetic can square
PK_RANGE = (0.0, 15.0)
MAX_ABS_LABEL = 1e6

P_SCALE_COLUMNS = {"pchembl value", "pchembl_value", "pki", "pic50", "pec50", "pkd", "pk"}
CONCENTRATION_COLUMNS = {"standard value", "standard_value"}
UNIT_COLUMNS = ["standard units", "standard_units", "units", "unit"]


def _check_units(frame: pd.DataFrame, label_col: str, units: str | None, path: Path) -> str | None:
    """Catch the two unit mistakes that silently ruin a proxy.

    A concentration unit on a column that is already a p-value is refused. A ChEMBL ``Standard Value``
    column without ``units`` takes its unit from the ``Standard Units`` column when every row agrees
    on one known unit; otherwise the user must say which unit it is.
    """
    name = label_col.strip().lower()
    if units in UNITS_TO_MOLAR and name in P_SCALE_COLUMNS:
        raise MolgfnError(
            f"{path}: label column {label_col!r} is already on a p-scale; drop --units {units} (or pass --units p)"
        )
    if units is None and name in CONCENTRATION_COLUMNS:
        unit_col = find_column(list(frame.columns), UNIT_COLUMNS)
        found = set(frame[unit_col].str.strip()) - {""} if unit_col else set()
        if len(found) == 1 and next(iter(found)) in UNITS_TO_MOLAR:
            return next(iter(found))
        raise MolgfnError(
            f"{path}: label column {label_col!r} holds concentrations; pass --units (one of "
            f"{', '.join(UNITS)}){f' - column {unit_col!r} has units {sorted(found)}' if unit_col else ''}"
        )
    return units


def load_assay_table(
    path: str | Path,
    smiles_col: str | None = None,
    label_col: str | None = None,
    units: str | None = None,
) -> tuple[pd.DataFrame, LoadReport]:
    """Read an assay table and return ``(table, report)``.

    ``table`` has one row per distinct standardised molecule: ``smiles`` (canonical SMILES of the
    standardised molecule), ``label`` (mean over its rows; pK = -log10(molar) when ``units`` is a
    concentration unit) and ``n_measurements``. ``report`` counts what was read, dropped and merged and
    keeps the dropped rows with a reason.

    Args:
        path: a ``.csv``/``.tsv``/``.txt`` table (delimiter detected) or an ``.sdf`` file.
        smiles_col: the SMILES column; found by common names when None.
        label_col: the label column; found by common names when None.
        units: ``nM``, ``uM``/``µM``, ``mM`` or ``M`` to convert a concentration to pK; ``p`` or None to
            use the label as given. A ChEMBL ``Standard Value`` label without ``units`` takes the unit of
            the ``Standard Units`` column when all rows share one; a concentration unit on a p-scale
            column (pChEMBL Value, pKi, ...) is refused.
    """
    if units is not None and units not in UNITS:
        raise MolgfnError(f"units must be one of {', '.join(UNITS)}; got {units!r}")
    path = Path(path)
    if not path.exists():
        raise MolgfnError(f"{path}: file not found")
    if not path.is_file():
        raise MolgfnError(f"{path}: not a file")
    try:
        if path.suffix.lower() in (".sdf", ".sd"):
            frame, delimiter, file_format = _read_sdf(path), None, "sdf"
        else:
            frame, delimiter = _read_delimited(path)
            file_format = {"\t": "tsv", ",": "csv"}.get(delimiter, "delimited text")
            with open(path, "rb") as fh:
                if fh.read(2) == b"\x1f\x8b":
                    file_format += ", gzip"
    except OSError as exc:
        raise MolgfnError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    columns = list(frame.columns)
    s_col = _resolve_column(columns, smiles_col, SMILES_COLUMNS, "SMILES", path)
    l_col = _resolve_column(columns, label_col, LABEL_COLUMNS, "label", path)
    units = _check_units(frame, l_col, units, path)
    # a p-scale column without --units is checked against the pK range too
    scale = "p" if units is None and l_col.strip().lower() in P_SCALE_COLUMNS else units

    report = LoadReport(
        path=str(path),
        sha256=file_sha256(path),
        file_format=file_format,
        delimiter=delimiter,
        columns=columns,
        smiles_col=s_col,
        label_col=l_col,
        units=units,
        n_rows=len(frame),
    )
    kept_smiles: list[str] = []
    kept_labels: list[float] = []
    reasons: list[str | None] = []
    cache: dict[str, str | None] = {}
    for raw_smiles, raw_label in zip(frame[s_col].tolist(), frame[l_col].tolist()):
        key = raw_smiles.strip()
        if key not in cache:
            cache[key] = standardize_smiles(key)
        smiles = cache[key]
        if smiles is None:
            reasons.append("empty SMILES" if not key else "invalid SMILES")
            report.n_invalid_smiles += 1
            continue
        value, reason = _parse_label(raw_label, scale)
        if reason is not None:
            reasons.append(reason)
            if reason == "empty label":
                report.n_missing_label += 1
            else:
                report.n_bad_label += 1
            continue
        reasons.append(None)
        kept_smiles.append(smiles)
        kept_labels.append(value)

    is_dropped = np.array([r is not None for r in reasons], dtype=bool)
    dropped = frame.loc[is_dropped].copy()
    dropped.insert(0, "row", np.flatnonzero(is_dropped) + 1)
    dropped["reason"] = [r for r in reasons if r is not None]
    report.dropped = dropped.reset_index(drop=True)

    kept = pd.DataFrame({"smiles": kept_smiles, "label": np.asarray(kept_labels, dtype=float)})
    table = (
        kept.groupby("smiles", sort=False)
        .agg(label=("label", "mean"), n_measurements=("label", "size"))
        .reset_index()
    )
    report.n_duplicates_merged = len(kept) - len(table)
    report.n_molecules = len(table)
    if report.n_molecules == 0:
        raise MolgfnError(f"{path}: no usable rows ({report.summary()})")
    return table, report
