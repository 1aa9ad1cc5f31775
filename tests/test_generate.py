"""Generation from a trained model: molgfn sample and molgfn evaluate, through the CLI."""

from __future__ import annotations

import pandas as pd
import pytest
from rdkit import Chem

from molgfn.candidates.export import read_sdf_table
from molgfn.candidates.generate import load_generator
from molgfn.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                "train",
                "--config",
                "configs/tiny.toml",
                "--runs-dir",
                str(runs),
                "--run-id",
                "g",
                "--no-progress",
            ]
        )
        == 0
    )
    return runs / "g"


def test_sample_writes_unique_valid_molecules_with_documented_columns(run_dir, tmp_path, capsys):
    out = tmp_path / "batch.csv"
    assert main(["sample", str(run_dir), "--n", "15", "--unique", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 15 and table["smiles"].is_unique
    assert all(Chem.MolFromSmiles(s) is not None for s in table["smiles"])
    # the tiny config's reward has qed and mw components; no proxy, so no proxy or novelty columns
    for column in [
        "reward",
        "qed_raw",
        "qed_desirability",
        "mw_raw",
        "qed",
        "sa",
        "mw",
        "logp",
        "tpsa",
        "hbd",
        "hba",
        "rotatable_bonds",
        "scaffold",
        "fragments",
    ]:
        assert column in table.columns, column
    assert "proxy_mean" not in table.columns
    assert ((table["reward"] >= 0) & (table["reward"] <= 1)).all()
    assert "15 molecules" in capsys.readouterr().out


def test_sdf_export_reopens_with_the_same_molecules_and_properties(run_dir, tmp_path):
    csv_out, sdf_out = tmp_path / "a.csv", tmp_path / "a.sdf"
    args = ["sample", str(run_dir), "--n", "12", "--unique", "--seed", "3"]
    assert main([*args, "--out", str(csv_out)]) == 0
    assert main([*args, "--out", str(sdf_out)]) == 0
    csv, sdf = pd.read_csv(csv_out), read_sdf_table(sdf_out)
    assert [Chem.CanonSmiles(s) for s in sdf["smiles"]] == [Chem.CanonSmiles(s) for s in csv["smiles"]]
    for column in ["reward", "qed", "mw", "logp"]:
        assert (sdf[column].astype(float) - csv[column]).abs().max() < 1e-6, column
    assert all(m is not None and m.GetNumConformers() == 1 for m in Chem.SDMolSupplier(str(sdf_out)))


def test_filter_errors_and_output_paths(run_dir, tmp_path, capsys):
    out = tmp_path / "x.csv"
    base = ["sample", str(run_dir), "--n", "5", "--out", str(out)]
    assert main([*base, "--filters", "has=[C"]) == 2
    assert "invalid SMARTS '[C'" in capsys.readouterr().err
    assert main([*base, "--filters", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown filter 'bogus'" in err and "pains" in err
    assert main([*base, "--filters", "has=[U]", "--max-samples", "512"]) == 2
    err = capsys.readouterr().err
    assert "no molecule passed the filters" in err and "has=[U]" in err and not out.exists()
    nested = tmp_path / "new" / "dir" / "o.smi"
    assert main(["sample", str(run_dir), "--n", "4", "--out", str(nested)]) == 0
    assert len(nested.read_text().splitlines()) == 4
    before = nested.read_text()
    assert main(["sample", str(run_dir), "--n", "6", "--out", str(nested)]) == 2
    assert "pass --force" in capsys.readouterr().err and nested.read_text() == before
    assert main(["sample", str(run_dir), "--n", "6", "--out", str(nested), "--force"]) == 0
    assert len(nested.read_text().splitlines()) == 6
    assert main(["sample", str(run_dir), "--n", "6", "--out", str(tmp_path / "x.xlsx")]) == 2
    assert "unknown format" in capsys.readouterr().err


def test_sample_reports_a_model_that_cannot_produce_enough_unique_molecules(run_dir, tmp_path, capsys):
    out = tmp_path / "many.csv"
    # at most 3 tiny fragments: far fewer than 5,000 distinct molecules exist
    assert (
        main(["sample", str(run_dir), "--n", "5000", "--unique", "--max-samples", "2048", "--out", str(out)])
        == 1
    )
    err = capsys.readouterr().err
    assert "only" in err and "of 5000" in err
    table = pd.read_csv(out)
    assert 0 < len(table) < 5000 and table["smiles"].is_unique  # what was found is written, not lost


def test_sample_without_unique_rolls_out_only_what_it_needs(run_dir):
    gen = load_generator(run_dir)
    try:
        table, report = gen.generate(40, seed=0)
        assert len(table) == 40 and report.sampled == 40
        table, report = gen.generate(300, seed=0, batch_size=256)
        assert len(table) == 300 and report.sampled == 512  # two whole batches
    finally:
        gen.close()


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nope"), "--n", "5", "--out", str(tmp_path / "o.csv")]) == 2
    assert "no such run, checkpoint or generator" in capsys.readouterr().err


def test_evaluate_prints_the_set_metrics(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--n", "200", "--heldout", "40"]) == 0
    out = capsys.readouterr().out
    for key in [
        "validity",
        "uniqueness",
        "intdiv1",
        "intdiv2",
        "modes",
        "circles",
        "scaffolds",
        "top10_reward",
        "logr_logp_pearson",
    ]:
        assert key in out, key


def test_generator_save_writes_a_relocatable_folder(run_dir, tmp_path, capsys):
    import tomllib

    out = tmp_path / "gen"
    assert main(["generator", "save", str(run_dir), "--out", str(out)]) == 0
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["env"]["vocab"] == "tiny"  # shipped names stay names; file paths become relative
    assert all(not str(c.get("path", "")).startswith("/") for c in config["reward"]["components"])
    table_path = tmp_path / "from_gen.csv"
    assert main(["sample", str(out), "--n", "5", "--out", str(table_path)]) == 0
    assert len(table_path.read_text().splitlines()) == 6
    assert main(["generator", "save", str(run_dir), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_asking_for_cuda_without_a_device_is_one_clear_line(monkeypatch, tmp_path, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["sample", "default", "--n", "5", "--device", "cuda", "--out", str(tmp_path / "x.csv")])
    assert code == 2
    assert "--device: 'cuda' requested but torch finds no CUDA device" in capsys.readouterr().err


def test_column_filters_work_while_sampling(run_dir, tmp_path):
    """reward thresholds need the candidates scored before they are filtered (they used to be refused)."""
    out = tmp_path / "r.csv"
    assert main(["sample", str(run_dir), "--n", "8", "--filters", "reward>=0.3", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 8 and (table["reward"] >= 0.3).all()


def test_scoring_for_the_table_is_shared_with_the_workers_and_matches_the_reward(run_dir):
    """Generator.score splits the molecules between this process and the workers: the same result as the
    reward in one call, in order, with progress after each piece up to 1."""
    import numpy as np

    from molgfn.candidates.generate import SCORE_PIECE

    gen = load_generator(run_dir)
    try:
        assert gen.pool is not None  # the tiny config has a worker process
        table, _ = gen.generate(3 * SCORE_PIECE + 5, seed=1)
        smiles = list(table["smiles"])
        fractions: list[float] = []
        shared = gen.score(smiles, progress=fractions.append)
        alone = gen.reward.score(smiles)
        assert shared.smiles == smiles
        np.testing.assert_array_equal(shared.score, alone.score)
        np.testing.assert_array_equal(shared.valid, alone.valid)
        for name in alone.raw:
            np.testing.assert_array_equal(shared.raw[name], alone.raw[name])
            np.testing.assert_array_equal(shared.transformed[name], alone.transformed[name])
        assert len(fractions) == 4 and fractions == sorted(fractions) and fractions[-1] == 1.0
        np.testing.assert_array_equal(table["reward"].to_numpy(), alone.score)  # the table's own scoring
        # a filter that needs the reward: the kept molecules keep the reward they were filtered on
        seen: list[float] = []
        kept, _ = gen.generate(20, filters="reward>=0.2", seed=2, scoring=seen.append)
        assert len(kept) == 20 and not seen  # scored while filtering, not again
        again = gen.reward.score(list(kept["smiles"]))
        np.testing.assert_array_equal(kept["reward"].to_numpy(), again.score)
        assert (kept["reward"] >= 0.2).all()
    finally:
        gen.close()
