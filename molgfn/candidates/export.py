"""The molecule table of a sample and its writers (CSV, SDF, SMI); see ``docs/export.md``.

::

    table = molecule_table(smiles, reward_result=result, proxy=proxy,
                           reference_smiles=proxy.train_smiles, extra={"fragments": fragments})
    mask, counts = apply_filters(table["smiles"], parse_filters("pains,sa<=4"), columns=table)
    write_molecules(table[mask], "out/candidates.sdf", force=False)

Columns, in this order (a column whose source is not given is left out; the documented list with units
is in ``docs/export.md``): id, smiles, reward, ``<name>_raw`` and ``<name>_desirability`` per reward
component, proxy_mean, proxy_std, qed, sa, mw, logp, tpsa, hbd, hba, rotatable_bonds,
undefined_stereocentres, scaffold, fragments, novel, nearest_train_smiles, nearest_train_similarity,
in_domain, then any other ``extra`` columns. The writers round floats to the documented precision (``PRECISION``).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem import rdDepictor

from molgfn.candidates.reference import ReferenceSet, canonical_smiles
from molgfn.chem.metrics import murcko
from molgfn.chem.molecules import MolBatch
from molgfn.errors import MolgfnError
from molgfn.reward.properties import INTEGER_PROPERTIES, PROPERTIES, compute_properties, remember

WRITERS = (".csv", ".sdf", ".smi")
# the reward component columns are named f"{name}{suffix}"
RAW_SUFFIX = "_raw"
DESIRABILITY_SUFFIX = "_desirability"
REFERENCE_COLUMNS = ("novel", "nearest_train_smiles", "nearest_train_similarity")
# The proxy's applicability domain (docs/export.md): a molecule is inside it when its nearest training
# molecule has Tanimoto >= DOMAIN_MIN_SIMILARITY (Morgan radius 2) and the proxy's spread is <= DOMAIN_MAX_SPREAD
# pK. On the shipped factor Xa proxy's held-out molecules (scaffold split) the rule keeps 413 of 619 with
# RMSE 0.77 pK and flags 206 with RMSE 1.05.
DOMAIN_MIN_SIMILARITY = 0.4
DOMAIN_MAX_SPREAD = 1.0
# decimals of each float column in a written file (the table in memory keeps full precision): enough
# for every difference a chemist acts on, not the noise of a float
PRECISION = {
    "reward": 4,
    "proxy_mean": 2,
    "proxy_std": 2,
    "qed": 3,
    "sa": 2,
    "mw": 2,
    "logp": 2,
    "tpsa": 1,
    "nearest_train_similarity": 3,
}
SUFFIX_PRECISION = {RAW_SUFFIX: 3, DESIRABILITY_SUFFIX: 4}
ID_PREFIX = "MG-"


def molecule_id(canonical: str) -> str:
    """A stable identifier of a molecule: ``MG-`` and 10 hex digits of the SHA-1 of its canonical SMILES,
    so the same molecule has the same id in every export, run and session."""
    return ID_PREFIX + hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:10].upper()


def in_domain(similarity: Sequence[float] | np.ndarray, spread: Sequence[float] | np.ndarray) -> np.ndarray:
    """Whether each molecule is inside the proxy's applicability domain: nearest training similarity at least
    ``DOMAIN_MIN_SIMILARITY`` and proxy spread at most ``DOMAIN_MAX_SPREAD`` pK (False where either is NaN)."""
    similarity = np.asarray(similarity, dtype=float)
    spread = np.asarray(spread, dtype=float)
    with np.errstate(invalid="ignore"):
        return (similarity >= DOMAIN_MIN_SIMILARITY) & (spread <= DOMAIN_MAX_SPREAD)


class Predictor(Protocol):
    """The proxy as the table needs it: ``molgfn.proxy.Proxy.predict``."""

    def predict(self, smiles: list[str]) -> tuple[np.ndarray, np.ndarray]: ...


def molecule_table(
    smiles: Sequence[str],
    reward_result: Any | None = None,
    proxy: Predictor | None = None,
    reference_smiles: Sequence[str] | ReferenceSet | None = None,
    extra: Mapping[str, Sequence[Any]] | None = None,
    reward: Any | None = None,
) -> pd.DataFrame:
    """One row per SMILES (same order, duplicates and invalid SMILES kept) with the documented columns.

    ``reward_result`` (a :class:`molgfn.reward.RewardResult` of these SMILES) gives reward and the
    component columns; ``proxy`` (anything with ``predict(smiles) -> (mean, std)``) gives proxy_mean and
    proxy_std; ``reference_smiles`` (the proxy's training SMILES) gives novel and the nearest training
    molecule; ``extra["fragments"]`` gives the fragments column and other ``extra`` keys are appended.
    The RDKit properties and the scaffold are always there. Invalid SMILES get NaN / empty values.

    ``reward`` (the :class:`molgfn.reward.Reward` that produced ``reward_result``) is optional and only
    saves time: the raw values of its RDKit descriptor components (qed, sa, mw, logp, tpsa; the default
    reward has qed, sa and mw) are reused for the property columns instead of being computed again.
    """
    smiles = [s if isinstance(s, str) else str(s) for s in smiles]
    n = len(smiles)
    extra = dict(extra or {})
    batch = MolBatch.parse(smiles)
    canonical = canonical_smiles(batch.mols)
    ids = [molecule_id(c if c is not None else s) for c, s in zip(canonical, smiles)]
    columns: dict[str, Any] = {"id": ids, "smiles": smiles}

    if reward_result is not None:
        if len(reward_result.score) != n:
            raise ValueError(f"reward_result has {len(reward_result.score)} scores for {n} SMILES")
        columns["reward"] = np.asarray(reward_result.score, dtype=float)
        for name in reward_result.raw:
            columns[f"{name}{RAW_SUFFIX}"] = np.asarray(reward_result.raw[name], dtype=float)
            columns[f"{name}{DESIRABILITY_SUFFIX}"] = np.asarray(reward_result.transformed[name], dtype=float)
        for term in getattr(reward, "terms", ()):
            if term.kind in PROPERTIES and term.name in reward_result.raw:
                remember(term.kind, batch.smiles, reward_result.raw[term.name])

    if proxy is not None:
        columns["proxy_mean"], columns["proxy_std"] = _predict(proxy, batch)

    properties = compute_properties(batch)
    for name in PROPERTIES:
        values = properties[name]
        columns[name] = pd.array(values, dtype="Int64") if name in INTEGER_PROPERTIES else values

    scaffold_of: dict[str, str] = {}
    for c, mol in zip(canonical, batch.mols):
        if c is not None and c not in scaffold_of:
            scaffold_of[c] = murcko(mol)
    columns["scaffold"] = [scaffold_of[c] if c is not None else None for c in canonical]

    if "fragments" in extra:
        columns["fragments"] = extra.pop("fragments")

    if reference_smiles is not None:
        reference = ReferenceSet.of(reference_smiles)
        columns["novel"] = reference.is_novel(canonical)
        first = {}  # nearest neighbours once per unique canonical SMILES
        for i, c in enumerate(canonical):
            if c is not None:
                first.setdefault(c, i)
        names, similarity = reference.nearest([batch.mols[i] for i in first.values()])
        nearest = dict(zip(first, zip(names, similarity)))
        columns["nearest_train_smiles"] = [nearest[c][0] if c is not None else None for c in canonical]
        columns["nearest_train_similarity"] = np.array(
            [nearest[c][1] if c is not None else np.nan for c in canonical]
        )
        if "proxy_std" in columns:
            columns["in_domain"] = in_domain(columns["nearest_train_similarity"], columns["proxy_std"])

    for name, values in extra.items():
        if name in columns:
            raise ValueError(f"extra column {name!r} would replace a computed column")
        columns[name] = values
    for name, values in columns.items():
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values for {n} SMILES")
    return pd.DataFrame(columns)


def _predict(proxy: Predictor, batch: MolBatch) -> tuple[np.ndarray, np.ndarray]:
    """Proxy mean and std per molecule (NaN for invalid ones), one predict() call on the unique valid SMILES."""
    mean, std = np.full(len(batch), np.nan), np.full(len(batch), np.nan)
    unique = list(dict.fromkeys(s for s, m in zip(batch.smiles, batch.mols) if m is not None))
    if not unique:
        return mean, std
    predicted_mean, predicted_std = proxy.predict(unique)
    predicted_mean = np.asarray(predicted_mean, dtype=float).reshape(-1)
    predicted_std = np.asarray(predicted_std, dtype=float).reshape(-1)
    if predicted_mean.shape != (len(unique),) or predicted_std.shape != (len(unique),):
        raise MolgfnError(
            f"proxy returned {predicted_mean.size} means and {predicted_std.size} stds for {len(unique)} molecules"
        )
    row = {s: i for i, s in enumerate(unique)}
    for i, (s, mol) in enumerate(zip(batch.smiles, batch.mols)):
        if mol is not None:
            mean[i], std[i] = predicted_mean[row[s]], predicted_std[row[s]]
    return mean, std


def write_molecules(df: pd.DataFrame, path: str | Path, force: bool = False) -> int:
    """Write a molecule table in the format its extension names; returns the number of records written.

    ``.csv``: every column. ``.sdf``: one record per parsable SMILES (others skipped), 2D coordinates,
    the ``id`` as the record's title (the SMILES where the table has no id) and every column as an SD
    property (empty values left out). Floats are rounded to :data:`PRECISION` in every format.
    ``.smi``: ``SMILES<TAB>id`` per row, no header, id the 1-based row number (or a ``name``/``id``
    column). The parent directory is created; an existing file is replaced only with ``force``. The file
    is written to a temporary file beside it and renamed, so an interrupted export leaves no half file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITERS:
        raise MolgfnError(
            f"cannot write {path}: unknown extension {path.suffix or '(none)'!r}; supported: {', '.join(WRITERS)}"
        )
    if "smiles" not in df.columns:
        raise MolgfnError(f"cannot write {path}: the table has no 'smiles' column")
    if path.is_dir():
        raise MolgfnError(f"cannot write {path}: it is a directory")
    if path.exists() and not force:
        raise MolgfnError(f"{path} already exists; pass --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
    except OSError as exc:
        raise MolgfnError(f"cannot write {path}: {exc}") from exc
    tmp = Path(tmp_name)
    df = rounded(df)
    try:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
            written = len(df)
        elif suffix == ".sdf":
            written = _write_sdf(df, tmp)
        else:
            written = _write_smi(df, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MolgfnError(f"cannot write {path}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def decimals_of(column: str) -> int | None:
    """The decimals a written file keeps of ``column`` (None: as computed)."""
    if column in PRECISION:
        return PRECISION[column]
    for suffix, decimals in SUFFIX_PRECISION.items():
        if column.endswith(suffix):
            return decimals
    return None


def rounded(df: pd.DataFrame) -> pd.DataFrame:
    """The table with each float column rounded to its documented precision (:data:`PRECISION`)."""
    out = df.copy()
    for column in out.columns:
        decimals = decimals_of(str(column))
        if decimals is not None and pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(decimals) + 0.0  # no "-0.0" in the file
    return out


def _sd_value(value: Any) -> str | None:
    """The SD property text of a cell, None for a missing value (left out of the record)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return " ".join(str(value).splitlines())  # an SD value must not span lines


def _write_sdf(df: pd.DataFrame, tmp: Path) -> int:
    properties = list(df.columns)  # the SMILES too: the record's title is its id, where the table has one
    writer = Chem.SDWriter(str(tmp))
    written = 0
    block = rdBase.BlockLogs()
    try:
        for row in df.itertuples(index=False, name=None):
            record = dict(zip(df.columns, row))
            smiles = record["smiles"]
            mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles else None
            if mol is None:
                continue
            rdDepictor.Compute2DCoords(mol)
            mol.SetProp("_Name", str(record.get("id") or smiles))
            for name in properties:
                text = _sd_value(record[name])
                if text is not None:
                    mol.SetProp(str(name), text)
            writer.write(mol)
            written += 1
    finally:
        writer.close()
        del block
    return written


def _write_smi(df: pd.DataFrame, tmp: Path) -> int:
    name_column = "name" if "name" in df.columns else "id" if "id" in df.columns else None
    names = df[name_column].astype(str) if name_column else [str(i + 1) for i in range(len(df))]
    lines = [
        f"{smiles}\t{name}" for smiles, name in zip(df["smiles"], names) if isinstance(smiles, str) and smiles
    ]
    tmp.write_text("".join(line + "\n" for line in lines))
    return len(lines)


def read_sdf_table(path: str | Path) -> pd.DataFrame:
    """Read an SDF written by :func:`write_molecules` back into a table: ``id`` and ``smiles`` from their
    SD properties (older files: ``smiles`` from the record's title; RDKit's SMILES of the record where it
    has neither), then every other SD property as a column, typed back: integers (Int64), floats,
    True/False (bool) or text. Unreadable records are skipped."""
    path = Path(path)
    if not path.is_file():
        raise MolgfnError(f"SDF file not found: {path}")
    rows: list[dict[str, str]] = []
    block = rdBase.BlockLogs()
    for mol in Chem.SDMolSupplier(str(path)):
        if mol is None:
            continue
        name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        props = {prop: mol.GetProp(prop) for prop in mol.GetPropNames()}
        # the SMILES property (files of this version; the title is the id), else the title (older files)
        smiles = props.pop("smiles", None) or (name if not name.startswith(ID_PREFIX) else "")
        row = {"id": props.pop("id")} if "id" in props else {}
        row["smiles"] = smiles or Chem.MolToSmiles(mol)
        row.update(props)
        rows.append(row)
    del block
    table = pd.DataFrame(rows, columns=list(dict.fromkeys(k for row in rows for k in row)) or ["smiles"])
    for column in table.columns:
        if column not in ("id", "smiles"):
            table[column] = _typed(table[column])
    return table


def _typed(texts: pd.Series) -> pd.Series:
    """A column of SD texts (NaN where a record lacked the property) as Int64, float, bool or text."""
    present = texts.dropna()
    if present.empty or (present == "").all():
        return texts
    if present.isin(["True", "False"]).all():
        return texts.map({"True": True, "False": False}) if len(present) == len(texts) else texts
    if present.str.fullmatch(r"[-+]?\d+").all():
        return pd.to_numeric(texts).astype("Int64")
    try:
        return pd.to_numeric(texts, errors="raise").astype(float)
    except (ValueError, TypeError):
        return texts
