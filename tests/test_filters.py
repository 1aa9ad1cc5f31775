"""Candidate filters: the spec language, what each filter removes on a hand-picked set, the error messages."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

from molgfn.candidates.export import molecule_table
from molgfn.candidates.filters import apply_filters, parse_filters, split_spec
from molgfn.errors import MolgfnError

MOLECULES = {
    "aniline": "Nc1ccccc1",
    "catechol": "Oc1ccccc1O",  # a PAINS alert (catechol_A)
    "c30": "C" * 30,  # MW 422, logP > 5: one Lipinski violation (passes); 27 rotatable bonds (fails Veber)
    "c40": "C" * 40,  # MW 563 and logP > 5: two Lipinski violations (fails); fails Veber
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "nitroaniline": "Nc1ccccc1[N+](=O)[O-]",
    "invalid": "C1CC",
}
NAMES = list(MOLECULES)
SMILES = list(MOLECULES.values())


def passing(spec: str, **kwargs) -> list[str]:
    mask, _ = apply_filters(SMILES, parse_filters(spec), **kwargs)
    return [name for name, keep in zip(NAMES, mask) if keep]


VALID = [n for n in NAMES if n != "invalid"]


def test_the_hand_picked_set_is_what_the_comments_say():
    c30, c40 = Chem.MolFromSmiles("C" * 30), Chem.MolFromSmiles("C" * 40)
    assert Descriptors.MolWt(c30) < 500 < Descriptors.MolWt(c40)
    assert Crippen.MolLogP(c30) > 5 and Crippen.MolLogP(c40) > 5
    assert rdMolDescriptors.CalcNumRotatableBonds(c30) > 10


def test_each_filter_removes_exactly_the_molecules_it_should():
    assert passing("pains") == [n for n in VALID if n != "catechol"]
    assert passing("lipinski") == [n for n in VALID if n != "c40"]  # c30 has one violation only
    assert passing("veber") == [n for n in VALID if n not in ("c30", "c40")]
    assert passing("has=[NH2]c") == ["aniline", "nitroaniline"]
    assert passing("not=[N+](=O)[O-]") == [n for n in VALID if n != "nitroaniline"]
    # MW: aniline 93.1, catechol 110.1, nitroaniline 138.1, paracetamol 151.2
    assert passing("mw=100-150") == ["catechol", "nitroaniline"]
    assert passing("mw<100") == ["aniline"]
    assert passing("mw>=151.16") == ["c30", "c40", "paracetamol"]
    # Lipinski counts: HBD = N-H + O-H bonds (aniline's NH2 is 2), HBA = N + O atoms (nitro: 3)
    assert passing("hbd>=2") == ["aniline", "catechol", "paracetamol", "nitroaniline"]
    assert passing("hba=2-3") == ["catechol", "paracetamol"]
    assert passing("novel", reference_smiles=["c1ccc(N)cc1", "OCC"]) == [n for n in VALID if n != "aniline"]


def test_invalid_smiles_never_pass_and_are_counted_first():
    mask, counts = apply_filters(SMILES, [])
    assert mask.tolist() == [n != "invalid" for n in NAMES]
    assert counts == {"invalid": 1}


def test_counts_are_sequential_and_add_up_to_the_removed_molecules():
    mask, counts = apply_filters(SMILES, parse_filters("veber,lipinski,pains"))
    # veber removes c30 and c40; lipinski would remove c40, already gone; pains removes catechol
    assert counts == {"invalid": 1, "veber": 2, "lipinski": 0, "pains": 1}
    assert sum(counts.values()) == (~mask).sum()


def test_a_filter_set_nothing_passes_gives_an_all_false_mask():
    mask, counts = apply_filters(SMILES, "has=[NH2]c,not=[NH2]")
    assert not mask.any()
    assert counts["not=[NH2]"] == 2


def test_commas_inside_smarts_brackets_do_not_split():
    assert split_spec("has=[N,O]C(=O)[C,N], pains ,,sa<=4") == ["has=[N,O]C(=O)[C,N]", "pains", "sa<=4"]
    filters = parse_filters("has=[N,O]C(=O)[C,N],pains")
    assert [f.spec for f in filters] == ["has=[N,O]C(=O)[C,N]", "pains"]
    assert passing("has=[N,O]C(=O)[C,N]") == ["paracetamol"]


def test_a_list_of_specs_is_the_specs_joined_and_repeats_are_applied_once():
    joined = parse_filters("pains,lipinski,sa<=4")
    assert parse_filters(["pains", "lipinski,sa<=4", "PAINS"]) == joined
    assert parse_filters(None) == [] and parse_filters("") == []


def test_range_and_threshold_forms_parse_with_negative_numbers_and_aliases():
    (logp,) = parse_filters("logp=-1-3")
    assert (logp.prop, logp.low, logp.high) == ("logp", -1.0, 3.0)
    (rotb,) = parse_filters("rotb<=10")
    assert (rotb.prop, rotb.operator, rotb.high) == ("rotatable_bonds", "<=", 10.0)
    (qed,) = parse_filters("QED>=0.5")
    assert (qed.spec, qed.low) == ("qed>=0.5", 0.5)


def test_unknown_filter_names_the_valid_ones():
    with pytest.raises(
        MolgfnError, match=r"unknown filter 'lipinksi'.*pains, brenk, nih, alerts, lipinski, veber, novel"
    ):
        parse_filters("pains,lipinksi")
    with pytest.raises(MolgfnError, match=r"unknown filter 'weight<=5'.*no property 'weight'.*qed, sa, mw"):
        parse_filters("weight<=5")


def test_invalid_smarts_is_quoted():
    with pytest.raises(MolgfnError, match=r"filter 'has=\[NH2'.*invalid SMARTS '\[NH2'"):
        parse_filters("pains,has=[NH2")
    with pytest.raises(MolgfnError, match=r"filter 'not=C\(\(C'.*invalid SMARTS"):
        parse_filters("not=C((C")
    with pytest.raises(MolgfnError, match="empty SMARTS"):
        parse_filters("has=")


def test_bad_numbers_and_ranges_name_the_filter():
    with pytest.raises(MolgfnError, match=r"filter 'sa<=four': expected a number after '<='"):
        parse_filters("sa<=four")
    with pytest.raises(MolgfnError, match=r"filter 'mw=500-200': empty range"):
        parse_filters("mw=500-200")
    with pytest.raises(MolgfnError, match=r"filter 'mw=200': expected a range LOW-HIGH"):
        parse_filters("mw=200")
    with pytest.raises(MolgfnError, match=r"filter 'qed>=': expected a number"):
        parse_filters("qed>=")


def test_novel_without_a_reference_is_an_error():
    with pytest.raises(MolgfnError, match="'novel' needs the reference"):
        apply_filters(SMILES, parse_filters("pains,novel"))


def test_thresholds_on_table_columns_need_the_table():
    with pytest.raises(MolgfnError, match=r"filter 'reward>=0.5': no reward values"):
        apply_filters(SMILES, parse_filters("reward>=0.5"))
    reward = np.linspace(0.0, 1.0, len(SMILES))
    mask, _ = apply_filters(SMILES, parse_filters("reward>=0.5"), columns={"reward": reward})
    assert mask.tolist() == [r >= 0.5 and n != "invalid" for r, n in zip(reward, NAMES)]


def test_filters_on_a_molecule_table_give_the_same_mask_as_on_smiles():
    table = molecule_table(SMILES, reference_smiles=["Nc1ccccc1"])
    spec = "pains,lipinski,veber,sa<=4,qed>=0.4,mw=90-300,tpsa<=80,hba<=3,novel"
    from_smiles, counts = apply_filters(SMILES, spec, reference_smiles=["Nc1ccccc1"])
    from_table, table_counts = apply_filters(table["smiles"], spec, ["Nc1ccccc1"], columns=table)
    assert from_smiles.tolist() == from_table.tolist()
    assert counts == table_counts


def test_alert_filters_drop_brenk_and_nih_alerts_and_keep_clean_molecules():
    smiles = ["O=Cc1ccccc1", "CC(=O)ON(C)c1ccccc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "O=C1C=CC(=O)C=C1"]
    mask, removed = apply_filters(smiles, parse_filters("brenk"))
    assert mask.tolist() == [False, False, True, False] and removed["brenk"] == 3
    mask, _ = apply_filters(smiles, parse_filters("nih"))
    assert mask.tolist() == [False, True, True, False]  # NIH has no O-N single bond alert
    mask, _ = apply_filters(smiles, parse_filters("alerts"))
    assert mask.tolist() == [False, False, True, False]
    mask, _ = apply_filters(smiles, parse_filters("pains"))
    assert mask.tolist() == [True, True, True, False]  # the quinone is also a PAINS alert
