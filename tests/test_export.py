"""The molecule table and its writers: documented columns, CSV / SDF / SMI round trips, overwrite rules."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molgfn.candidates import export
from molgfn.candidates.export import molecule_table, read_sdf_table, write_molecules
from molgfn.errors import MolgfnError
from molgfn.reward import Reward

DOCS = Path(__file__).resolve().parents[1] / "docs" / "export.md"
SMILES = ["CC(=O)Nc1ccc(O)cc1", "OCC", "c1ccccc1N", "CCCCCC", "CCO", "not a smiles"]
REFERENCE = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(OC)cc1"]
FRAGMENTS = ["*C(C)=O + *N* + *c1ccc(O)cc1", "*CC + *O", "*c1ccccc1 + *N", "*CCC + *CCC", "*CC + *O", ""]
REWARD_CONFIG = {
    "components": [
        {"kind": "qed"},
        {"kind": "sa", "transform": {"kind": "reverse_sigmoid", "low": 2.0, "high": 6.0}},
    ]
}


def documented_columns() -> list[str]:
    """The column names of the table in docs/export.md's "Columns" section, in order."""
    section = DOCS.read_text().split("## Columns", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


@pytest.fixture
def full_table(fake_proxy) -> pd.DataFrame:
    result = Reward.from_config(REWARD_CONFIG).score(SMILES)
    return molecule_table(
        SMILES,
        reward_result=result,
        proxy=fake_proxy,
        reference_smiles=REFERENCE,
        extra={"fragments": FRAGMENTS},
    )


def test_every_documented_column_is_there_in_the_documented_order(full_table):
    expected = []
    for column in documented_columns():
        if column.startswith("<name>"):  # one pair per reward component
            continue
        expected.append(column)
        if column == "reward":
            expected += ["qed_raw", "qed_desirability", "sa_raw", "sa_desirability"]
    assert list(full_table.columns) == expected
    assert len(full_table) == len(SMILES)


def test_columns_without_a_source_are_left_out():
    table = molecule_table(SMILES)
    assert list(table.columns) == [
        "id", "smiles", "qed", "sa", "mw", "logp", "tpsa", "hbd", "hba", "rotatable_bonds",
        "undefined_stereocentres", "scaffold"
    ]  # fmt: skip


def test_values_by_hand(full_table, fake_proxy):
    row = full_table.set_index("smiles")
    # OCC is ethanol, in the reference as CCO: not novel, its own nearest neighbour
    assert not row.loc["OCC", "novel"]
    assert row.loc["OCC", "nearest_train_smiles"] == "CCO"
    assert row.loc["OCC", "nearest_train_similarity"] == 1.0
    assert row.loc["c1ccccc1N", "novel"]
    assert row.loc["c1ccccc1N", "nearest_train_smiles"] == "c1ccccc1"
    assert row.loc["CC(=O)Nc1ccc(O)cc1", "nearest_train_smiles"] == "COc1ccc(NC(C)=O)cc1"
    assert row.loc["c1ccccc1N", "scaffold"] == "c1ccccc1"
    assert row.loc["CCCCCC", "scaffold"] == ""  # acyclic
    assert row.loc["c1ccccc1N", "hbd"] == 2 and row.loc["c1ccccc1N", "hba"] == 1  # Lipinski: NH2 counts 2
    assert row.loc["CCCCCC", "rotatable_bonds"] == 3
    assert row.loc["CCO", "mw"] == pytest.approx(46.069, abs=1e-3)
    assert row.loc["OCC", "proxy_mean"] == pytest.approx(4.0 + 3 / 4)  # the fake proxy: 4 + len / 4
    assert row.loc["OCC", "proxy_std"] == 0.5
    assert row.loc["OCC", "qed_raw"] == row.loc["OCC", "qed"]  # the reward's QED is the property's QED
    assert row.loc["OCC", "sa_raw"] == row.loc["OCC", "sa"]
    assert row.loc["CCO", "fragments"] == "*CC + *O"
    # one predict() call, on the unique valid SMILES
    assert fake_proxy.calls == [SMILES[:5]]


def test_invalid_smiles_keep_their_row_with_empty_values(full_table):
    last = full_table.iloc[-1]
    assert last["smiles"] == "not a smiles"
    assert last["reward"] == 0.0
    assert np.isnan(last["qed"]) and np.isnan(last["proxy_mean"]) and pd.isna(last["hbd"])
    assert not last["novel"] and pd.isna(last["scaffold"])


def test_other_extra_columns_are_appended_and_lengths_are_checked():
    table = molecule_table(["CCO", "CCN"], extra={"beta": [8.0, 16.0], "fragments": ["*CC + *O", "*CC + *N"]})
    assert list(table.columns)[-2:] == ["fragments", "beta"]
    with pytest.raises(ValueError, match="'beta' has 1 values for 2 SMILES"):
        molecule_table(["CCO", "CCN"], extra={"beta": [8.0]})
    with pytest.raises(ValueError, match="'qed'"):
        molecule_table(["CCO"], extra={"qed": [1.0]})


def test_csv_has_every_column_and_reads_back_equal(full_table, tmp_path):
    path = tmp_path / "out.csv"
    assert write_molecules(full_table, path) == len(SMILES)
    back = pd.read_csv(path, keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(full_table.columns)
    for column in ("reward", "qed", "sa", "logp", "proxy_mean", "nearest_train_similarity"):
        decimals = export.PRECISION[column]
        expected = full_table[column].to_numpy(float).round(decimals)
        np.testing.assert_array_equal(back[column].to_numpy(float), expected)


def test_sdf_reopens_with_the_same_molecules_and_properties(full_table, tmp_path):
    path = tmp_path / "out.sdf"
    assert write_molecules(full_table, path) == len(SMILES) - 1  # the invalid SMILES is skipped
    valid = full_table.iloc[:-1].reset_index(drop=True)
    mols = [m for m in Chem.SDMolSupplier(str(path))]
    assert all(m is not None and m.GetNumConformers() == 1 for m in mols)
    assert [Chem.MolToSmiles(m) for m in mols] == [Chem.CanonSmiles(s) for s in valid["smiles"]]
    assert [m.GetProp("_Name") for m in mols] == list(valid["id"])  # the title is the stable id
    back = read_sdf_table(path)
    assert set(back.columns) <= set(full_table.columns)
    # every non-empty value came back (the acyclic molecules' empty scaffold is an empty property)
    assert list(back.columns) == list(full_table.columns)
    valid = export.rounded(valid)  # as written
    for column in valid.columns:
        if pd.api.types.is_float_dtype(valid[column]):
            np.testing.assert_allclose(
                back[column].to_numpy(float), valid[column].to_numpy(float), rtol=1e-12
            )
        else:
            assert back[column].tolist() == valid[column].tolist(), column


def test_smi_is_smiles_tab_id_without_header(full_table, tmp_path):
    path = tmp_path / "out.smi"
    assert write_molecules(full_table.iloc[:3], path) == 3
    ids = list(full_table["id"][:3])
    assert path.read_text() == f"CC(=O)Nc1ccc(O)cc1\t{ids[0]}\nOCC\t{ids[1]}\nc1ccccc1N\t{ids[2]}\n"
    supplier = Chem.SmilesMolSupplier(str(path), delimiter="\t", titleLine=False)
    assert [m.GetProp("_Name") for m in supplier] == ids
    write_molecules(full_table.iloc[:3].drop(columns="id"), path, force=True)
    assert path.read_text() == "CC(=O)Nc1ccc(O)cc1\t1\nOCC\t2\nc1ccccc1N\t3\n"
    named = full_table.iloc[:2].assign(name=["a", "b"])
    write_molecules(named, path, force=True)
    assert path.read_text() == "CC(=O)Nc1ccc(O)cc1\ta\nOCC\tb\n"


def test_existing_output_is_not_overwritten_without_force(tmp_path):
    table = molecule_table(["CCO"])
    path = tmp_path / "out.csv"
    path.write_text("precious\n")
    with pytest.raises(MolgfnError, match=r"already exists; pass --force"):
        write_molecules(table, path)
    assert path.read_text() == "precious\n"
    write_molecules(table, path, force=True)
    assert path.read_text().startswith("id,smiles,")


def test_missing_directory_is_created(tmp_path):
    path = tmp_path / "new" / "deeper" / "out.sdf"
    write_molecules(molecule_table(["CCO"]), path)
    assert read_sdf_table(path)["smiles"].tolist() == ["CCO"]


def test_unknown_extension_lists_the_supported_ones(tmp_path):
    with pytest.raises(MolgfnError, match=r"unknown extension '\.xlsx'; supported: \.csv, \.sdf, \.smi"):
        write_molecules(molecule_table(["CCO"]), tmp_path / "out.xlsx")
    with pytest.raises(MolgfnError, match=r"unknown extension '\(none\)'"):
        write_molecules(molecule_table(["CCO"]), tmp_path / "out")


def test_an_interrupted_export_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    table = molecule_table(["CCO", "CCN"])
    path = tmp_path / "out.sdf"

    def write_half_then_fail(df, tmp):
        tmp.write_text("half a record\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_write_sdf", write_half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_molecules(table, path)
    assert list(tmp_path.iterdir()) == []
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        write_molecules(table, path, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.sdf"] and path.read_text() == "old\n"


def test_read_sdf_table_of_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(MolgfnError, match="SDF file not found"):
        read_sdf_table(tmp_path / "none.sdf")


def test_property_columns_equal_the_rdkit_functions_even_when_taken_from_qed():
    from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors

    from molgfn.reward.properties import clear_memo

    clear_memo()
    table = molecule_table(SMILES[:-1])
    mols = [Chem.MolFromSmiles(s) for s in SMILES[:-1]]
    for column, fn in {
        "qed": QED.qed,
        "mw": Descriptors.MolWt,
        "logp": Crippen.MolLogP,
        "tpsa": rdMolDescriptors.CalcTPSA,
        "rotatable_bonds": rdMolDescriptors.CalcNumRotatableBonds,
    }.items():
        assert table[column].tolist() == [fn(m) for m in mols], column


def test_the_rewards_descriptor_values_are_reused(monkeypatch):
    from rdkit.Chem import QED

    from molgfn.reward.properties import clear_memo

    reward = Reward.from_config(REWARD_CONFIG)
    result = reward.score(SMILES)
    clear_memo()

    def no_qed(mol):
        raise RuntimeError("QED must not be computed again")

    monkeypatch.setattr(QED, "properties", no_qed)
    table = molecule_table(SMILES, reward_result=result, reward=reward)
    np.testing.assert_array_equal(table["qed"], result.raw["qed"])
    np.testing.assert_array_equal(table["sa"], result.raw["sa"])
    clear_memo()
    assert (
        molecule_table(SMILES[:1], reward_result=None)["qed"].isna().all()
    )  # without the reward: recomputed


def test_the_id_is_stable_and_names_the_molecule_not_its_spelling():
    table = molecule_table(["OCC", "CCO", "c1ccccc1O", "not a smiles"])
    ids = list(table["id"])
    assert ids[0] == ids[1]  # ethanol, written two ways
    assert len(set(ids[1:])) == 3 and all(re.fullmatch(r"MG-[0-9A-F]{10}", i) for i in ids)
    assert ids[0] == molecule_table(["CCO"])["id"][0]  # the same in another table, another session
    assert ids[0] == export.molecule_id(Chem.CanonSmiles("CCO"))


def test_written_floats_keep_their_documented_decimals(full_table, tmp_path):
    path = tmp_path / "out.csv"
    write_molecules(full_table, path)
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in full_table.columns:
        decimals = export.decimals_of(column)
        if decimals is None or not pd.api.types.is_float_dtype(full_table[column]):
            continue
        written = [v for v in text[column] if v not in ("", "nan")]
        assert written, column
        assert all(len(v.split(".")[1]) <= decimals if "." in v else True for v in written), column
    # the table itself keeps full precision (filters and the dashboard use it)
    assert full_table["reward"].round(4).ne(full_table["reward"]).any()


def test_undefined_stereocentres_count_open_centres_and_double_bonds():
    smiles = ["CC(N)C(=O)O", "C[C@H](N)C(=O)O", "CC=CC", "C/C=C/C", "OC1CCCC1O", "c1ccccc1"]
    table = molecule_table(smiles)
    assert table["undefined_stereocentres"].tolist() == [1, 0, 1, 0, 2, 0]
    from molgfn.candidates.filters import apply_filters, parse_filters

    mask, _ = apply_filters(smiles, parse_filters("undefined_stereocentres<=0"))
    assert mask.tolist() == [False, True, False, True, False, True]


def test_in_domain_follows_the_documented_rule(fake_proxy):
    # the fake proxy's spread is 0.5 for every molecule: only the nearest training similarity decides
    table = molecule_table(
        ["CCO", "CC(=O)Nc1ccc(OC)cc1", "CCCCCCCCCC"], proxy=fake_proxy, reference_smiles=REFERENCE
    )
    assert table["in_domain"].tolist() == [True, True, False]
    assert (table["nearest_train_similarity"] >= export.DOMAIN_MIN_SIMILARITY).tolist() == [True, True, False]

    class Spread:
        def predict(self, smiles):
            return np.full(len(smiles), 7.0), np.array([0.99, 1.01])

    table = molecule_table(["CCO", "OCC", "not a smiles"], proxy=Spread(), reference_smiles=REFERENCE)
    assert table["in_domain"].tolist() == [True, False, False]  # spread above 1.0; invalid: never inside
    assert export.in_domain([0.4, 0.39, np.nan], [1.0, 0.1, 0.1]).tolist() == [True, False, False]


def test_the_in_domain_filter_needs_its_columns(full_table):
    from molgfn.candidates.filters import apply_filters

    mask, counts = apply_filters(full_table["smiles"], "in_domain", columns=full_table)
    assert mask.tolist() == (full_table["in_domain"] & full_table["smiles"].ne("not a smiles")).tolist()
    assert counts["in_domain"] == int((~full_table["in_domain"]).sum()) - 1  # the invalid one counted apart
    with pytest.raises(MolgfnError, match="filter 'in_domain' needs the proxy's spread"):
        apply_filters(full_table["smiles"], "in_domain")
