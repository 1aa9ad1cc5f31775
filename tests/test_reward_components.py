"""RDKit components (QED, SA, PAINS, similarity, descriptors), the proxy component and whole-reward scoring."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from molgfn.errors import MolgfnError
from molgfn.reward import DEFAULT_PROXY_PATH, DEFAULT_REWARD_CONFIG, Reward
from molgfn.reward.components import Alerts, Descriptor, MolBatch, Pains, ProxyActivity, Similarity

REPO_ROOT = Path(__file__).resolve().parents[1]

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
PENICILLIN_G = "CC1(C)SC2C(NC(=O)Cc3ccccc3)C(=O)N2C1C(=O)O"
RHODANINE_ENE = "O=C1NC(=S)SC1=Cc1ccccc1"  # 5-benzylidene rhodanine: PAINS ene_rhod_A
CATECHOL_AZO = "Oc1ccc(N=Nc2ccccc2)cc1O"  # PAINS azo_A and catechol_A
PARTIAL = ["C", "CO", "c1ccccc1", "*c1ccccc1", "[*:1]CC", "O"]


def test_parse_marks_invalid_and_empty_smiles() -> None:
    batch = MolBatch.parse(["CCO", "not a smiles", "", "C1CC", "c1ccccc1 benzene"])
    np.testing.assert_array_equal(batch.valid, [True, False, False, False, True])
    assert batch.smiles[4] == "c1ccccc1"  # the name after whitespace is not part of the SMILES


def test_qed_known_values() -> None:
    qed = Descriptor("qed").compute(MolBatch.parse([ASPIRIN, "c1ccccc1", "xx"]))
    assert qed[0] == pytest.approx(0.550, abs=0.005)  # Bickerton et al. report 0.55 for aspirin
    assert qed[1] == pytest.approx(0.443, abs=0.005)
    assert np.isnan(qed[2])


def test_sa_score_is_easy_for_aspirin_harder_for_penicillin() -> None:
    sa = Descriptor("sa").compute(MolBatch.parse([ASPIRIN, PENICILLIN_G, "c1ccccc1"]))
    assert sa[0] == pytest.approx(1.58, abs=0.02)
    assert sa[1] > sa[0] + 1.0
    assert sa[2] == pytest.approx(1.0, abs=0.01)
    assert np.all((sa >= 1.0) & (sa <= 10.0))


def test_molecular_weight_logp_tpsa() -> None:
    batch = MolBatch.parse(["CCO"])
    assert Descriptor("mw").compute(batch)[0] == pytest.approx(46.069, abs=1e-3)
    assert Descriptor("logp").compute(batch)[0] == pytest.approx(-0.0014, abs=1e-3)
    assert Descriptor("tpsa").compute(batch)[0] == pytest.approx(20.23, abs=1e-2)


def test_pains_flags_known_alerts_and_passes_clean_molecules() -> None:
    flags = Pains().compute(MolBatch.parse([RHODANINE_ENE, CATECHOL_AZO, ASPIRIN, "c1ccccc1", "bad("]))
    np.testing.assert_array_equal(flags[:4], [0.0, 0.0, 1.0, 1.0])
    assert np.isnan(flags[4])


ALERTED = {  # SMILES -> the Brenk and NIH alerts RDKit's catalogues name for it
    "O=Cc1ccccc1": 2,  # aldehyde (Brenk and NIH)
    "CC(=O)SCc1ccccc1": 2,  # thioester (Brenk and NIH)
    "CC(=O)ON(C)c1ccccc1": 1,  # O-acyl hydroxylamine: an O-N single bond (Brenk)
}
CLEAN = ["CC(C)Cc1ccc(cc1)C(C)C(=O)O", "O=C(NCc1ccccc1)Nc1ccc(Cl)cc1"]  # ibuprofen, a urea


def test_alerts_counts_brenk_and_nih_alerts_and_leaves_clean_drugs_at_zero() -> None:
    from rdkit import Chem
    from rdkit.Chem import FilterCatalog

    smiles = [*ALERTED, *CLEAN, "bad("]
    counts = Alerts().compute(MolBatch.parse(smiles))
    np.testing.assert_array_equal(counts[: len(ALERTED)], list(ALERTED.values()))
    np.testing.assert_array_equal(counts[len(ALERTED) : -1], [0.0, 0.0])
    assert np.isnan(counts[-1])
    # the same counts as RDKit's own catalogues, queried directly
    params = FilterCatalog.FilterCatalogParams()
    for catalogue in ("PAINS", "BRENK", "NIH"):
        params.AddCatalog(getattr(FilterCatalog.FilterCatalogParams.FilterCatalogs, catalogue))
    catalog = FilterCatalog.FilterCatalog(params)
    direct = [len(catalog.GetMatches(Chem.MolFromSmiles(s))) for s in smiles[:-1]]
    np.testing.assert_array_equal(counts[:-1], direct)
    # one catalogue at a time: PAINS alone flags none of these
    assert Alerts(["pains"]).compute(MolBatch.parse(list(ALERTED))).tolist() == [0.0, 0.0, 0.0]


def test_alerts_in_a_reward_penalise_by_the_default_transform_and_bad_catalogues_are_named() -> None:
    reward = Reward.from_config({"components": [{"kind": "alerts"}]})
    result = reward.score(["O=Cc1ccccc1", "CC(=O)ON(C)c1ccccc1", CLEAN[0]])
    np.testing.assert_allclose(result.score, [0.0, 0.5, 1.0])
    with pytest.raises(MolgfnError, match=r"catalogs.*pains, brenk, nih"):
        Reward.from_config({"components": [{"kind": "alerts", "catalogs": ["brenk", "lilly"]}]})


def test_similarity_is_one_for_identical_reference_and_lower_otherwise() -> None:
    sim = Similarity(["c1ccccc1O", ASPIRIN]).compute(MolBatch.parse([ASPIRIN, "Oc1ccccc1", "CCCCCCCC"]))
    assert sim[0] == pytest.approx(1.0)
    assert sim[1] == pytest.approx(1.0)  # same molecule written differently
    assert 0.0 <= sim[2] < 0.2


def test_similarity_rejects_invalid_reference() -> None:
    with pytest.raises(ValueError, match="invalid reference"):
        Similarity(["CCO", "c1cc"])


def test_proxy_component_mean_minus_kappa_std_and_only_valid_molecules_sent(fake_proxy) -> None:
    values = ProxyActivity(fake_proxy, kappa=2.0).compute(MolBatch.parse(["CCCC", "bad(", "CO"]))
    np.testing.assert_allclose(values[[0, 2]], [4.0 + 1.0 - 1.0, 4.0 + 0.5 - 1.0])
    assert np.isnan(values[1])
    assert fake_proxy.calls == [["CCCC", "CO"]]


def test_proxy_acquisitions_ucb_and_expected_improvement(fake_proxy) -> None:
    batch = MolBatch.parse(["CCCC", "CO"])  # the fake proxy: mean 4 + len/4 (5, 4.5), std 0.5
    ucb = ProxyActivity(fake_proxy, kappa=2.0, acquisition="ucb").compute(batch)
    np.testing.assert_allclose(ucb, [5.0 + 1.0, 4.5 + 1.0])
    ei = ProxyActivity(fake_proxy, acquisition="ei", best=5.0).compute(batch)
    # at the best: std * pdf(0); 1 std below it: 0.5 * (pdf(-1) - cdf(-1))
    pdf0, pdf1, cdf1 = 1 / np.sqrt(2 * np.pi), np.exp(-0.5) / np.sqrt(2 * np.pi), 0.15865525393145707
    np.testing.assert_allclose(ei, [0.5 * pdf0, 0.5 * (pdf1 - cdf1)], rtol=1e-9)
    identity = {"kind": "identity"}
    reward = {
        "components": [{"kind": "proxy", "model": fake_proxy, "acquisition": "ei", "transform": identity}]
    }
    with pytest.raises(MolgfnError, match=r"reward.components\[0\].best: acquisition 'ei' needs 'best'"):
        Reward.from_config(reward)


def test_proxy_returning_wrong_length_raises_naming_component() -> None:
    class Broken:
        def predict(self, smiles):
            return np.zeros(1), np.zeros(1)

    with pytest.raises(MolgfnError, match="'activity'.*1 means.*2 molecules"):
        ProxyActivity(Broken(), name="activity").compute(MolBatch.parse(["C", "CC"]))


def _default_with(fake_proxy) -> dict:
    cfg = copy.deepcopy(DEFAULT_REWARD_CONFIG)
    activity = cfg["components"][0]
    del activity["path"]
    activity["model"] = fake_proxy
    return cfg


def test_default_config_points_at_repo_models_and_builds_with_a_model(fake_proxy) -> None:
    # the shipped proxy is a package resource; in a checkout it is the file in models/
    assert DEFAULT_PROXY_PATH.resolve() == (REPO_ROOT / "models" / "proxy_default.pt").resolve()
    assert DEFAULT_PROXY_PATH.is_file()
    reward = Reward.from_config(_default_with(fake_proxy))
    assert reward.names == ["activity", "qed", "sa", "mw", "alerts"]
    assert [t.name for t in reward.terms if t.multiply] == ["alerts"]
    assert reward.aggregation == "geometric"


def test_reward_scores_partial_and_invalid_molecules_without_raising(fake_proxy) -> None:
    reward = Reward.from_config(_default_with(fake_proxy))
    smiles = [*PARTIAL, ASPIRIN, "not-a-smiles", ""]
    result = reward.score(smiles)
    n = len(smiles)
    assert result.score.shape == (n,)
    assert result.valid.tolist() == [True] * (n - 2) + [False, False]
    assert np.all(np.isfinite(result.score))
    assert np.all((result.score >= 0.0) & (result.score <= 1.0))
    clean = result.raw["alerts"][: n - 2] == 0
    assert clean.any() and not clean.all()  # both kinds are in the batch
    assert np.all(result.score[: n - 2][clean] > 0.0)
    np.testing.assert_array_equal(result.score[: n - 2][~clean], 0.0)  # the alerts gate
    np.testing.assert_array_equal(result.score[-2:], [0.0, 0.0])
    for name in reward.names:
        assert result.raw[name].shape == (n,) and result.transformed[name].shape == (n,)
        assert np.all(np.isnan(result.raw[name][-2:]))
        np.testing.assert_array_equal(result.transformed[name][-2:], [0.0, 0.0])
    assert np.all(np.isfinite(reward.log_reward(result.score, 8.0)))


def test_reward_score_matches_hand_aggregation(fake_proxy) -> None:
    reward = Reward.from_config(_default_with(fake_proxy))
    result = reward.score([ASPIRIN, PENICILLIN_G, "CC(=O)Nc1ccc(OC)cc1"])
    d = result.transformed
    expected = (d["activity"] ** 1.0 * d["qed"] ** 0.5 * d["sa"] ** 0.5 * d["mw"] ** 0.5) ** (1 / 2.5)
    np.testing.assert_allclose(result.score, expected * d["alerts"], rtol=1e-12)
    # aspirin (phenol ester) and penicillin G (beta-lactam) have a Brenk alert each: the gate zeroes them
    assert result.raw["alerts"].tolist() == [1.0, 1.0, 0.0] and result.score[:2].tolist() == [0.0, 0.0]
    assert result.score[2] > 0
    assert result.raw["activity"][0] == pytest.approx(4.0 + len(ASPIRIN) / 4.0)


def test_arithmetic_reward_with_a_zero_component() -> None:
    cfg = {
        "aggregation": "arithmetic",
        "components": [
            {"kind": "qed", "weight": 1.0},
            {"kind": "pains", "weight": 3.0},
        ],
    }
    result = Reward.from_config(cfg).score([RHODANINE_ENE, ASPIRIN])
    qed = result.raw["qed"]
    np.testing.assert_allclose(result.score, [qed[0] / 4.0, (qed[1] + 3.0) / 4.0], rtol=1e-12)
    geometric = Reward.from_config({**cfg, "aggregation": "geometric"}).score([RHODANINE_ENE])
    assert geometric.score[0] == 0.0  # a PAINS hit zeroes the geometric mean


def test_a_multiply_term_scales_the_mean_of_the_others_by_its_desirability_to_its_weight() -> None:
    # alerts' default transform: 1, 0.5 and 0 for 0, 1 and >= 2 alerts
    smiles = ["CC(=O)Nc1ccc(OC)cc1", "CC(=O)Nc1ccc(O)cc1", "O=Cc1ccccc1NN"]  # 0, 1 (hydroquinone), >= 2
    components = [
        {"kind": "qed", "weight": 1.0},
        {"kind": "mw", "weight": 3.0, "transform": {"kind": "window", "low": 100.0, "high": 300.0}},
    ]
    plain = Reward.from_config({"components": components}).score(smiles)
    gated = Reward.from_config(
        {"components": [*components, {"kind": "alerts", "multiply": True, "weight": 2.0}]}
    ).score(smiles)
    assert gated.raw["alerts"][0] == 0 and gated.raw["alerts"][1] == 1 and gated.raw["alerts"][2] >= 2
    # the mean of qed and mw is not diluted by the multiplying term; one alert costs 0.5 ** 2
    np.testing.assert_allclose(gated.score, plain.score * np.array([1.0, 0.25, 0.0]), rtol=1e-12)
    assert plain.score.min() > 0
    weighted = Reward.from_config({"components": [*components, {"kind": "alerts", "weight": 2.0}]}).score(
        smiles
    )
    assert weighted.score[0] > plain.score[0]  # in the mean, the 1 of a clean molecule would lift it


def test_a_reward_of_only_multiplying_terms_is_refused() -> None:
    with pytest.raises(MolgfnError, match=r"reward\.components: at least one component needs a weight > 0"):
        Reward.from_config({"components": [{"kind": "alerts", "multiply": True}]})
    with pytest.raises(MolgfnError, match=r"reward\.components\[0\]\.multiply: must be"):
        Reward.from_config({"components": [{"kind": "qed", "multiply": "yes"}]})


def test_empty_batch_scores_to_empty_arrays() -> None:
    result = Reward.from_config({"components": [{"kind": "qed"}]}).score([])
    assert result.score.shape == (0,) and result.valid.shape == (0,)


def test_to_frame_has_raw_and_transformed_columns(fake_proxy) -> None:
    frame = Reward.from_config(_default_with(fake_proxy)).score(["CCO", "bad("]).to_frame()
    assert list(frame.columns) == [
        "smiles", "valid", "score", "activity_raw", "activity", "qed_raw", "qed", "sa_raw", "sa", "mw_raw", "mw",
        "alerts_raw", "alerts",
    ]  # fmt: skip
    assert frame["valid"].tolist() == [True, False]


def test_value_cache_memoises_per_smiles_and_stays_bounded() -> None:
    from molgfn.chem.molecules import ValueCache
    from molgfn.chem.molecules import per_molecule as _per_molecule

    calls: list[int] = []

    def heavy_atoms(mol) -> float:
        calls.append(1)
        return float(mol.GetNumHeavyAtoms())

    cache = ValueCache(max_size=3)
    batch = MolBatch.parse(["CCO", "CCO", "c1ccccc1", "bad("])
    first = _per_molecule(batch, heavy_atoms, cache)
    again = _per_molecule(batch, heavy_atoms, cache)
    np.testing.assert_array_equal(first[:3], [3.0, 3.0, 6.0])
    np.testing.assert_array_equal(again[:3], first[:3])
    assert np.isnan(first[3]) and np.isnan(again[3])
    assert len(calls) == 2  # CCO and benzene, once each
    _per_molecule(MolBatch.parse(["C", "CC", "CCC"]), heavy_atoms, cache)
    assert len(cache) <= 3


def test_cached_descriptor_values_equal_uncached() -> None:
    smiles = [ASPIRIN, PENICILLIN_G, ASPIRIN, "CO"]
    component = Descriptor("qed")
    cold = component.compute(MolBatch.parse(smiles))
    warm = component.compute(MolBatch.parse(smiles))
    np.testing.assert_array_equal(cold, warm)
    assert len(component.cache) == 3
