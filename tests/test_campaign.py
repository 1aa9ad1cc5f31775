"""Design campaigns: rounds against an oracle that records every molecule it is sent, crash safety under
kill -9 (while labelling and while training), the lab round trip, and config errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from molgfn.campaigns import Campaign
from molgfn.cli import main

REPO = Path(__file__).resolve().parents[1]
MOLGFN = [sys.executable, "-m", "molgfn"]

# an oracle (logP) that writes each molecule it returns a value for, after an optional delay
ORACLE = """
import os, time
from rdkit import Chem
from rdkit.Chem import Descriptors

def logp(smiles):
    time.sleep(float(os.environ.get("ORACLE_SLEEP", "0")))
    out = [Descriptors.MolLogP(Chem.MolFromSmiles(s)) for s in smiles]
    with open(os.environ["ORACLE_CALLS"], "a") as fh:
        fh.writelines(s + "\\n" for s in smiles)
    return out
"""


def logp(smiles: str) -> float:
    return Descriptors.MolLogP(Chem.MolFromSmiles(smiles))


@pytest.fixture(scope="module")
def start_generator(tmp_path_factory) -> Path:
    """A small generator on the default vocabulary (a few steps of the tiny model)."""
    runs = tmp_path_factory.mktemp("start")
    argv = [*MOLGFN, "train", "--config", "tiny", "--steps", "3", "--runs-dir", str(runs), "--run-id", "start",
            "--no-progress", "--set", "env.vocab=default", "--set", "env.max_frags=4"]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
    return runs / "start"


@pytest.fixture
def oracle(tmp_path, monkeypatch):
    (tmp_path / "oracle_plugin.py").write_text(ORACLE)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("ORACLE_CALLS", str(calls))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return calls


def write_config(folder: Path, start: Path, *, oracle: str | None = None, **campaign) -> Path:
    settings = {"name": "t", "rounds": 2, "batch_size": 4, "pool_size": 12, "start_size": 30,
                "oracle_cache": "oracle.sqlite", **campaign}  # fmt: skip
    lines = ["[campaign]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in settings.items()]
    lines += ["", "[oracle]", oracle or 'kind = "python"\nfunction = "oracle_plugin:logp"\nexpensive = true']
    lines += ["", "[generator]", f'start = "{start}"', "steps = 4", "batch_size = 8"]
    lines += ["", "[reward]", 'components = [{kind = "qed", weight = 0.5}]']
    path = folder / "campaign.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def check_store(campaign: Campaign, calls: Path | None) -> pd.DataFrame:
    """Each molecule once, with one label equal to the oracle's value; none sent twice."""
    frame = campaign.store.molecules()
    assert frame["smiles"].is_unique and frame["id"].is_unique
    labelled = frame[frame["source"] != "data"]
    assert labelled["labelled"].notna().all()
    for smiles, label in zip(labelled["smiles"], labelled["label"]):
        assert label == pytest.approx(logp(smiles))
    if calls is not None:
        sent = calls.read_text().split()
        assert len(sent) == len(set(sent)), "a molecule was sent to the oracle twice"
        assert sorted(sent) == sorted(labelled["smiles"])
    return frame


def test_a_campaign_from_nothing_labels_new_diverse_molecules_each_round(start_generator, oracle):
    config = write_config(Path.cwd(), start_generator)
    assert main(["campaign", "new", "--config", str(config), "--id", "c"]) == 0
    assert main(["campaign", "run", "c", "--no-progress"]) == 0
    campaign = Campaign("campaigns/c")
    frame = check_store(campaign, oracle)
    assert frame.groupby("round").size().to_dict() == {0: 30, 1: 4, 2: 4}
    batches = frame[frame["round"] > 0]
    # predictions were recorded for every selected molecule (before it was labelled)
    assert batches["predicted"].notna().all() and batches["spread"].notna().all()
    summary = campaign.summary()
    assert summary["round"].tolist() == [0, 1, 2] and summary["labels"].tolist() == [30, 34, 38]
    assert summary["oracle_calls"].tolist() == [30, 34, 38]
    last = summary.iloc[-1]
    top = sorted(frame["label"], reverse=True)
    assert last["best"] == pytest.approx(top[0]) and last["top10_mean"] == pytest.approx(sum(top[:10]) / 10)
    assert campaign.store.phase(2, "proxy")["labels"] == 34  # round 2's proxy saw every label of round 1
    # the second round's generator was warm-started from the first's, and trained its own steps
    assert Path(campaign.store.phase(2, "generator")["run"]).name == "generator"
    # a ceiling of 0.7 within each batch
    from rdkit import DataStructs

    from molgfn.campaigns.select import fingerprints

    for _, batch in batches.groupby("round"):
        fps = fingerprints(batch["smiles"].tolist())
        for i in range(len(fps)):
            assert max(DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i] + fps[i + 1 :])) <= 0.7
    # nothing more to do: running again changes nothing and asks the oracle nothing
    before = oracle.read_text()
    assert main(["campaign", "run", "c", "--no-progress"]) == 0
    assert oracle.read_text() == before


def _kill_during(phase: str, campaign_dir: Path, proc: subprocess.Popen, ready) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        status = Campaign(campaign_dir).store.status() if (campaign_dir / "campaign.toml").exists() else {}
        if status.get("round") == 1 and status.get("phase") == phase and ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return
        time.sleep(0.05)
    raise AssertionError(f"never reached round 1's {phase} (exit {proc.poll()})")


@pytest.mark.slow
def test_kill_9_while_labelling_then_run_again(start_generator, oracle, monkeypatch):
    config = write_config(Path.cwd(), start_generator, batch_size=12, pool_size=36)
    assert main(["campaign", "new", "--config", str(config), "--id", "c"]) == 0
    monkeypatch.setenv("ORACLE_SLEEP", "0.4")  # 4 molecules per oracle call: 0.4 s each
    proc = subprocess.Popen([*MOLGFN, "campaign", "run", "c", "--no-progress"], stderr=subprocess.DEVNULL)

    def some_labelled() -> bool:
        return Campaign("campaigns/c").store.molecules(1)["labelled"].notna().sum() >= 4

    _kill_during("label", Path("campaigns/c"), proc, some_labelled)
    campaign = Campaign("campaigns/c")
    partial = campaign.store.molecules(1)
    assert 0 < partial["labelled"].notna().sum() < 12  # killed with part of the batch labelled
    monkeypatch.setenv("ORACLE_SLEEP", "0")
    assert main(["campaign", "run", "c", "--no-progress"]) == 0
    frame = check_store(Campaign("campaigns/c"), oracle)
    assert frame.groupby("round").size().to_dict() == {0: 30, 1: 12, 2: 12}


@pytest.mark.slow
def test_kill_9_while_training_then_run_again_resumes_the_round(start_generator, oracle, monkeypatch):
    config = write_config(Path.cwd(), start_generator)
    text = (
        config.read_text()
        .replace("steps = 4", "steps = 400")
        .replace("batch_size = 8", 'batch_size = 8\nset = ["train.checkpoint_every=5"]')
    )
    config.write_text(text)
    assert main(["campaign", "new", "--config", str(config), "--id", "c"]) == 0
    run = Path("campaigns/c/rounds/01/generator")
    proc = subprocess.Popen([*MOLGFN, "campaign", "run", "c", "--no-progress"], stderr=subprocess.DEVNULL)
    _kill_during("generator", Path("campaigns/c"), proc, lambda: len(list(run.glob("checkpoints/*.pt"))) >= 2)
    assert main(["campaign", "run", "c", "--no-progress", "--rounds", "1"]) == 0
    log = (run / "train.log").read_text()
    assert "resumed from the checkpoint at step" in log
    frame = check_store(Campaign("campaigns/c"), oracle)
    assert frame.groupby("round").size().to_dict() == {0: 30, 1: 4}


@pytest.fixture
def assay(tmp_path) -> Path:
    rows = (REPO / "data" / "targets" / "CHEMBL244_Ki.csv").read_text().splitlines()[:41]
    path = tmp_path / "assay.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_lab_round_trip_reports_bad_rows_and_the_next_round_trains_on_the_imports(
    start_generator, oracle, assay, capsys
):
    config = write_config(Path.cwd(), start_generator, oracle='kind = "lab"', direction="maximize")
    assert main(["campaign", "new", "--config", str(config), "--data", str(assay), "--id", "lab"]) == 0
    assert main(["campaign", "run", "lab", "--no-progress"]) == 0
    campaign = Campaign("campaigns/lab")
    assert campaign.store.status()["state"] == "waiting"
    assert main(["campaign", "export", "lab", "--round", "1", "--out", "batch.csv"]) == 0
    batch = pd.read_csv("batch.csv")
    assert len(batch) == 4 and batch["id"].tolist() == ["R01-0000", "R01-0001", "R01-0002", "R01-0003"]
    assert batch["predicted"].notna().all() and batch["label"].isna().all()
    assert main(["campaign", "export", "lab", "--round", "1", "--out", "batch.sdf"]) == 0
    sdf = [m for m in Chem.SDMolSupplier("batch.sdf")]
    assert [m.GetProp("_Name") for m in sdf] == batch["id"].tolist()
    ids, smiles = batch["id"].tolist(), batch["smiles"].tolist()
    results = pd.DataFrame(
        {
            "smiles": [smiles[0], "c1ccc2ccccc2c1", smiles[1], smiles[0], smiles[2]],
            "measured": ["7.5", "6.0", "8.25", "9.9", "n/a"],
        }
    )  # row 2: good; 3: unknown; 4: good; 5: duplicate; 6: not a number; smiles[3] is missing
    results.to_csv("results.csv", index=False)
    capsys.readouterr()
    assert main(["campaign", "import", "lab", "results.csv"]) == 0
    err = capsys.readouterr().err
    assert "row 3: unknown smiles 'c1ccc2ccccc2c1'" in err
    assert f"row 5: duplicate of {ids[0]}" in err
    assert f"row 6: {ids[2]}: value 'n/a' is not a number" in err
    assert f"{ids[3]} ({smiles[3]}) of round 1: no result in the file" in err
    assert "2 labels stored, 4 problems reported" in err
    frame = campaign.store.molecules(1).set_index("id")
    assert frame.loc[ids[0], "label"] == 7.5 and frame.loc[ids[1], "label"] == 8.25
    assert frame.loc[[ids[2], ids[3]], "labelled"].isna().all()
    assert main(["campaign", "run", "lab", "--no-progress"]) == 0
    start = campaign.store.phase(0, "start")["molecules"]
    assert campaign.store.phase(2, "proxy")["labels"] == start + 2  # trained on the two imported labels
    assert campaign.store.phase(1, "label") == {"labelled": 2, "missing": 2}
    assert campaign.store.status()["state"] == "waiting" and campaign.store.status()["round"] == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[campaign]", "[campaign]\nbatch = 4"), "campaign.batch: unknown key; did you mean 'batch_size'?"),
        (("rounds = 2", 'rounds = "two"'), "campaign.rounds: must be an integer, got string 'two'"),
        (
            ("pool_size = 12", "pool_size = 3"),
            "campaign.pool_size: must be >= campaign.batch_size (got 3 < 4)",
        ),
        (('kind = "python"', 'kind = "pythn"'), "oracle.kind: unknown"),
        (("steps = 4", "steps = 0"), "generator.steps: must be >= 1 (got 0)"),
    ],
)
def test_a_bad_campaign_config_fails_before_anything_runs(start_generator, oracle, capsys, edit, message):
    config = write_config(Path.cwd(), start_generator)
    config.write_text(config.read_text().replace(*edit, 1))
    assert main(["campaign", "new", "--config", str(config), "--id", "bad"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(config) in err, err
    assert not Path("campaigns").exists()


def test_the_round_report_states_hits_in_the_oracle_direction():
    from molgfn.campaigns import format_report

    info = {
        "labels": 64,
        "oracle_calls": 64,
        "best": -11.5,
        "top10_mean": -10.0,
        "hits": 21,
        "threshold": -9.0,
    }
    assert "hits 21 (<= -9)" in format_report(info, "minimize")
    assert "hits 21 (>= -9)" in format_report(info, "maximize")
