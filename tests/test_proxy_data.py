"""Loading assay tables: messy ChEMBL-style exports, column detection, units, errors, splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molgfn.errors import MolgfnError
from molgfn.proxy import load_assay_table, split_indices, standardize_smiles
from molgfn.proxy.split import murcko_scaffold

# A ChEMBL web export in miniature: ';' delimiter, every field quoted, a ';' inside a quoted field,
# extra columns, salts, a parent duplicated by its salt, empty/non-numeric labels, invalid SMILES.
MESSY = """\
"Molecule ChEMBL ID";"Smiles";"Standard Value";"Standard Units";"pChEMBL Value";"Comment"
"CHEMBL1";"CCO";"100";"nM";"7.0";"ok; fine"
"CHEMBL2";"CC(=O)[O-].[Na+]";"1000";"nM";"6.0";"sodium salt, parent CC(=O)O"
"CHEMBL3";"CC(=O)O";"";"nM";"6.5";"same parent as CHEMBL2"
"CHEMBL4";"Nc1ccccc1.Cl";"10";"nM";"8.0";"HCl salt"
"CHEMBL5";"Nc1ccccc1";"";"nM";"";"empty label"
"CHEMBL6";"C1CC";"5";"nM";"8.3";"unclosed ring"
"CHEMBL7";"";"5";"nM";"8.3";"no structure"
"CHEMBL8";"OCC";"";"nM";"7.4";"CCO written differently"
"CHEMBL9";"CCN";"";"nM";"n/a";"missing"
"CHEMBL10";"CCC";"";"nM";">5";"censored"
"""


@pytest.fixture()
def messy_file(tmp_path):
    path = tmp_path / "chembl_export.csv"
    path.write_text(MESSY, encoding="utf-8")
    return path


def test_messy_chembl_export_loads_with_exact_counts(messy_file):
    table, report = load_assay_table(messy_file)
    assert report.delimiter == ";"
    assert (report.smiles_col, report.label_col) == ("Smiles", "pChEMBL Value")
    assert report.n_rows == 10
    assert report.n_invalid_smiles == 2
    assert report.n_missing_label == 2
    assert report.n_bad_label == 1
    assert report.n_duplicates_merged == 2
    assert report.n_molecules == 3
    labels = dict(zip(table["smiles"], table["label"]))
    assert labels == pytest.approx({"CCO": 7.2, "CC(=O)O": 6.25, "Nc1ccccc1": 8.0})
    assert dict(zip(table["smiles"], table["n_measurements"])) == {"CCO": 2, "CC(=O)O": 2, "Nc1ccccc1": 1}


def test_dropped_rows_file_keeps_rows_and_reasons(messy_file, tmp_path):
    _, report = load_assay_table(messy_file)
    out = report.write_dropped(tmp_path / "proxy.pt.dropped.csv")
    dropped = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert dropped["Molecule ChEMBL ID"].tolist() == ["CHEMBL5", "CHEMBL6", "CHEMBL7", "CHEMBL9", "CHEMBL10"]
    assert dropped["row"].tolist() == ["5", "6", "7", "9", "10"]
    assert dropped["reason"].tolist() == [
        "empty label",
        "invalid SMILES",
        "empty SMILES",
        "empty label",
        "non-numeric label '>5'",
    ]
    assert "Comment" in dropped.columns  # original columns are kept


def test_standardisation_strips_salts_and_charges():
    assert standardize_smiles("CC(=O)[O-].[Na+]") == "CC(=O)O"
    assert standardize_smiles("C[NH3+].[Cl-]") == "CN"
    assert standardize_smiles("OCC") == Chem.MolToSmiles(Chem.MolFromSmiles("CCO"))
    assert standardize_smiles("C1CC") is None


def test_units_convert_concentrations_to_pk(tmp_path):
    path = tmp_path / "ki.tsv"
    path.write_text("compound\tSMILES\tKi\nA\tCCO\t1000\nB\tCCN\t1\nC\tCCC\t0\n")
    table, report = load_assay_table(path, label_col="ki", units="nM")
    assert report.delimiter == "\t" and report.label_col == "Ki"
    assert dict(zip(table["smiles"], table["label"])) == pytest.approx({"CCO": 6.0, "CCN": 9.0})
    assert report.n_bad_label == 1  # Ki = 0 has no pK
    table_um, _ = load_assay_table(path, label_col="Ki", units="µM")
    assert dict(zip(table_um["smiles"], table_um["label"]))["CCO"] == pytest.approx(3.0)


def test_table_without_smiles_column_lists_columns(tmp_path):
    path = tmp_path / "no_smiles.csv"
    path.write_text("name,inchi,pIC50\na,InChI=1S/CH4/h1H4,5\n")
    with pytest.raises(MolgfnError) as err:
        load_assay_table(path)
    message = str(err.value)
    assert "no recognisable SMILES column" in message
    assert "name, inchi, pIC50" in message and "no_smiles.csv" in message


def test_missing_file_and_unknown_column_are_named(tmp_path, messy_file):
    with pytest.raises(MolgfnError, match="nope.csv: file not found"):
        load_assay_table(tmp_path / "nope.csv")
    with pytest.raises(MolgfnError, match="label column 'IC50' not found"):
        load_assay_table(messy_file, label_col="IC50")
    with pytest.raises(MolgfnError, match="units must be one of"):
        load_assay_table(messy_file, units="mg/L")


def test_sdf_properties_are_read(tmp_path):
    path = tmp_path / "set.sdf"
    writer = Chem.SDWriter(str(path))
    for smiles, value in [("CCO", "7.5"), ("c1ccccc1O", "5.0"), ("CC(=O)[O-].[Na+]", "6.0")]:
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("pKi", value)
        writer.write(mol)
    writer.close()
    table, report = load_assay_table(path)
    assert report.file_format == "sdf" and report.label_col == "pKi"
    assert dict(zip(table["smiles"], table["label"])) == pytest.approx(
        {"CCO": 7.5, "Oc1ccccc1": 5.0, "CC(=O)O": 6.0}
    )


@pytest.fixture(scope="module")
def target_smiles():
    return pd.read_csv("data/targets/CHEMBL214_Ki.csv")["smiles"].tolist()[:300]


def test_scaffold_split_keeps_each_scaffold_in_one_part(target_smiles):
    parts = split_indices(target_smiles, "scaffold", seed=3)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(target_smiles)))
    scaffolds = {name: {murcko_scaffold(target_smiles[i]) for i in index} for name, index in parts.items()}
    assert not scaffolds["train"] & scaffolds["valid"]
    assert not scaffolds["train"] & scaffolds["test"]
    assert not scaffolds["valid"] & scaffolds["test"]
    assert 220 <= len(parts["train"]) <= 240 and len(parts["valid"]) >= 20 and len(parts["test"]) >= 20


def test_splits_are_deterministic_and_seeded(target_smiles):
    for kind in ("scaffold", "random"):
        a, b = split_indices(target_smiles, kind, seed=1), split_indices(target_smiles, kind, seed=1)
        c = split_indices(target_smiles, kind, seed=2)
        assert all(np.array_equal(a[p], b[p]) for p in a)
        assert not np.array_equal(a["test"], c["test"])
    with pytest.raises(ValueError, match="split must be one of scaffold, random"):
        split_indices(target_smiles, "time")


def test_unit_mistakes_are_caught_or_resolved(messy_file, tmp_path):
    with pytest.raises(MolgfnError, match="'pChEMBL Value' is already on a p-scale"):
        load_assay_table(messy_file, units="nM")
    # Standard Value with one unit in Standard Units: the unit is taken from the table
    table, report = load_assay_table(messy_file, label_col="Standard Value")
    assert report.units == "nM"
    assert dict(zip(table["smiles"], table["label"])) == pytest.approx(
        {"CCO": 7.0, "CC(=O)O": 6.0, "Nc1ccccc1": 8.0}
    )
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("smiles,Standard Value,Standard Units\nCCO,10,nM\nCCN,1,uM\n")
    with pytest.raises(MolgfnError, match=r"holds concentrations; pass --units .* has units \['nM', 'uM'\]"):
        load_assay_table(mixed, label_col="Standard Value")
