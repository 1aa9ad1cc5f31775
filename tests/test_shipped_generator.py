"""The shipped generator (models/generator_default) works on a fresh install, without training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import FilterCatalog

from molgfn.candidates.export import read_sdf_table
from molgfn.candidates.generate import DEFAULT_GENERATOR, load_generator
from molgfn.chem.metrics import internal_diversity
from molgfn.cli import main

DOCUMENTED = [
    "id",
    "smiles",
    "reward",
    "activity_raw",
    "activity_desirability",
    "qed_raw",
    "qed_desirability",
    "sa_raw",
    "sa_desirability",
    "mw_raw",
    "mw_desirability",
    "alerts_raw",
    "alerts_desirability",
    "proxy_mean",
    "proxy_std",
    "qed",
    "sa",
    "mw",
    "logp",
    "tpsa",
    "hbd",
    "hba",
    "rotatable_bonds",
    "undefined_stereocentres",
    "scaffold",
    "fragments",
    "novel",
    "nearest_train_smiles",
    "nearest_train_similarity",
    "in_domain",
]


@pytest.fixture(scope="module")
def generator():
    return load_generator(DEFAULT_GENERATOR)


def test_sample_1000_unique_molecules_with_every_documented_column(tmp_path, capsys):
    out = tmp_path / "batch.csv"
    assert main(["sample", str(DEFAULT_GENERATOR), "--n", "1000", "--unique", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 1000 and table["smiles"].is_unique
    assert all(Chem.MolFromSmiles(s) is not None for s in table["smiles"])
    assert list(table.columns) == DOCUMENTED
    assert table["proxy_mean"].between(2, 13).all() and (table["nearest_train_similarity"] <= 1).all()
    # the documented rule, up to the written rounding (similarity 3 decimals, spread 2)
    sim, spread, inside = table["nearest_train_similarity"], table["proxy_std"], table["in_domain"]
    assert (inside <= ((sim >= 0.3995) & (spread <= 1.005))).all()
    assert (inside >= ((sim >= 0.4005) & (spread <= 0.995))).all()
    assert "1000 molecules" in capsys.readouterr().out
    # chemistry by default: at most 5 % hit a PAINS, Brenk or NIH alert, checked here with RDKit directly
    params = FilterCatalog.FilterCatalogParams()
    for which in ("PAINS", "BRENK", "NIH"):
        params.AddCatalog(getattr(FilterCatalog.FilterCatalogParams.FilterCatalogs, which))
    catalog = FilterCatalog.FilterCatalog(params)
    hits = np.array([catalog.HasMatch(Chem.MolFromSmiles(s)) for s in table["smiles"]])
    assert hits.mean() <= 0.05
    assert (table.loc[hits, "alerts_raw"] > 0).all() and (table.loc[~hits, "alerts_raw"] == 0).all()


def test_sdf_export_of_the_shipped_generator_reopens(tmp_path):
    out = tmp_path / "batch.sdf"
    assert main(["sample", str(DEFAULT_GENERATOR), "--n", "30", "--unique", "--out", str(out)]) == 0
    table = read_sdf_table(out)
    assert len(table) == 30
    for column in ("reward", "proxy_mean", "qed", "sa", "nearest_train_similarity"):
        assert table[column].astype(float).between(0, 14).all()


def test_higher_beta_gives_higher_reward_and_lower_diversity(generator):
    lo, hi = generator.beta_range
    low, _ = generator.generate(600, beta=lo, seed=1)
    high, _ = generator.generate(600, beta=hi, seed=1)
    assert high["reward"].mean() > low["reward"].mean() + 0.02
    div_low = internal_diversity(list(dict.fromkeys(low["smiles"])))
    div_high = internal_diversity(list(dict.fromkeys(high["smiles"])))
    assert div_high < div_low
    assert np.isfinite([div_low, div_high]).all()
