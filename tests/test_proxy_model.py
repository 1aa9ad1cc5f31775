"""Training, predicting, saving and loading proxies (tiny models on 200 molecules, few epochs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molgfn.errors import MolgfnError
from molgfn.proxy import Proxy, train_proxy

REPO = Path(__file__).resolve().parents[1]
TINY = {"gnn": {"max_epochs": 4, "hidden": 32, "layers": 2}, "fp": {"trees": 20}}
PROBE = ["CCOc1ccccc1N1CCN(CCCCNC(=O)c2ccccc2)CC1", "not a smiles", "c1ccccc1CCN", "CC(=O)[O-].[Na+]", ""]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    data = pd.read_csv(REPO / "data/targets/CHEMBL234_Ki.csv").iloc[:200]
    return pd.DataFrame({"smiles": data["smiles"], "label": data["pK"]})


@pytest.fixture(scope="module")
def trained(table):
    return train_proxy(table, model="auto", seed=0, ensemble=2, progress=False, hyperparameters=TINY)


def test_auto_reports_every_family_on_the_same_test_part_and_picks_best_valid(trained, table):
    proxy, metrics = trained
    families = metrics["families"]
    assert set(families) == {"gnn", "fp"}
    assert families["gnn"]["test"]["n"] == families["fp"]["test"]["n"] == proxy.metadata["split"]["n_test"]
    assert metrics["chosen"] == min(families, key=lambda f: families[f]["valid"]["rmse"])
    assert proxy.family == metrics["chosen"]
    for entry in families.values():
        assert set(entry["test"]) >= {"rmse", "mae", "r2", "spearman"}
        assert entry["test"]["rmse"] >= entry["test"]["mae"] > 0
    assert proxy.train_smiles == table["smiles"].tolist()
    assert sorted(set(proxy.data_split)) == ["test", "train", "valid"]


def test_predict_gives_nan_for_unparsable_and_is_batch_independent(trained):
    proxy, _ = trained
    mean, std = proxy.predict(PROBE)
    assert np.isnan(mean[[1, 4]]).all() and np.isnan(std[[1, 4]]).all()
    assert np.isfinite(mean[[0, 2, 3]]).all() and (std[[0, 2, 3]] >= 0).all()
    small = proxy.predict(PROBE, batch_size=2)
    np.testing.assert_allclose(small[0], mean, rtol=0, atol=1e-5)
    # a salt scores as its parent (standardised like the training data)
    np.testing.assert_array_equal(proxy.predict(["CC(=O)O"])[0], mean[[3]])


@pytest.mark.parametrize("family", ["gnn", "fp"])
def test_saved_proxy_predicts_identically_in_a_new_process(table, tmp_path, family):
    proxy, _ = train_proxy(table, model=family, ensemble=2, progress=False, hyperparameters=TINY)
    path = proxy.save(tmp_path / f"{family}.pt")
    torch.load(path, weights_only=True)  # plain types and tensors only
    mean, std = proxy.predict(PROBE)
    # other batch compositions change float32 GEMM blocking: equal to ~1e-7, not bit for bit
    np.testing.assert_allclose(proxy.predict(PROBE, batch_size=1)[0], mean, rtol=0, atol=1e-5)
    script = (
        "import json, sys; from molgfn.proxy import Proxy\n"
        "m, s = Proxy.load(sys.argv[1]).predict(json.loads(sys.argv[2]))\n"
        "print(json.dumps([[float(v).hex() for v in m], [float(v).hex() for v in s]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path), json.dumps(PROBE)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    other_mean, other_std = (np.array([float.fromhex(v) for v in row]) for row in json.loads(result.stdout))
    np.testing.assert_array_equal(other_mean, mean)
    np.testing.assert_array_equal(other_std, std)
    loaded = Proxy.load(path)
    assert loaded.train_smiles == proxy.train_smiles
    np.testing.assert_array_equal(loaded.train_labels, table["label"].to_numpy())
    assert loaded.metadata["model_family"] == family


def test_load_rejects_missing_and_corrupt_files(tmp_path):
    with pytest.raises(MolgfnError, match="absent.pt: proxy file not found"):
        Proxy.load(tmp_path / "absent.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 this is not a torch file")
    with pytest.raises(MolgfnError, match="corrupt.pt: not a readable molgfn proxy file"):
        Proxy.load(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(MolgfnError, match="foreign.pt: not a molgfn proxy file"):
        Proxy.load(foreign)


def test_train_validates_parameters_by_name(table):
    with pytest.raises(ValueError, match="model must be one of gnn, fp, auto; got 'svm'"):
        train_proxy(table, model="svm")
    with pytest.raises(ValueError, match="ensemble must be an integer from 1 to 20"):
        train_proxy(table, ensemble=0)
    with pytest.raises(ValueError, match="at least 30 molecules"):
        train_proxy(table.iloc[:10])


def test_graph_features_match_rdkit_atom_and_bond_properties(table):
    """The fast featuriser derives degree, aromaticity and ring membership from the adjacency matrix
    and ring list; check them against RDKit's own per-atom and per-bond answers."""
    from rdkit import Chem

    from molgfn.proxy.featurize import ATOM_OFFSETS, BOND_OFFSETS, mol_to_graph

    for smiles in table["smiles"].iloc[:60].tolist() + ["c1ccc2c(c1)-c1ccccc1C2", "C1CC2CCC1C2", "[NH4+]"]:
        mol = Chem.MolFromSmiles(smiles)
        graph = mol_to_graph(mol)
        codes = graph.atoms - ATOM_OFFSETS
        for a in mol.GetAtoms():
            i = a.GetIdx()
            assert codes[i, 1] == min(a.GetDegree(), 6)
            assert codes[i, 2] == max(-2, min(2, a.GetFormalCharge())) + 2
            assert codes[i, 3] == int(a.GetIsAromatic())
            assert codes[i, 5] == min(a.GetTotalNumHs(), 4)
            assert codes[i, 6] == int(a.IsInRing())
        bond_codes = graph.bonds - BOND_OFFSETS
        assert graph.edge_index.shape[1] == 2 * mol.GetNumBonds()
        for (u, v), (kind, ring) in zip(graph.edge_index.T, bond_codes):
            bond = mol.GetBondBetweenAtoms(int(u), int(v))
            expected = {Chem.BondType.SINGLE: 0, Chem.BondType.AROMATIC: 1, Chem.BondType.DOUBLE: 2}.get(
                bond.GetBondType(), 3
            )
            assert kind == expected and ring == int(bond.IsInRing())


def test_shipped_default_proxy_reproduces_its_recorded_test_metrics():
    from molgfn.proxy import DEFAULT_PROXY, regression_metrics

    proxy = Proxy.load(DEFAULT_PROXY)
    test = [i for i, part in enumerate(proxy.data_split) if part == "test"]
    mean, _ = proxy.predict([proxy.train_smiles[i] for i in test])
    measured = regression_metrics(proxy.train_labels[test], mean)
    recorded = proxy.metadata["metrics"]["families"][proxy.family]["test"]
    assert measured["n"] == recorded["n"] == proxy.metadata["split"]["n_test"]
    assert measured["rmse"] == pytest.approx(recorded["rmse"], abs=1e-6)
    assert measured["spearman"] == pytest.approx(recorded["spearman"], abs=1e-6)
    assert DEFAULT_PROXY.stat().st_size < 8e6
