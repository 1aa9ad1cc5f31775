"""The Campaigns page (AppTest): no campaign, a finished one, one waiting for lab results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from test_campaign import ORACLE, write_config

from molgfn.campaigns import Campaign, new_campaign

ROOT = Path(__file__).resolve().parents[1]
HOME = str(ROOT / "app" / "Home.py")


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory) -> Path:
    """A finished campaign (oracle: a logP plugin) and a lab campaign waiting for its first results."""
    folder = tmp_path_factory.mktemp("campaigns")
    argv = [sys.executable, "-m", "molgfn", "train", "--config", "tiny", "--steps", "3", "--runs-dir",
            str(folder / "runs"), "--run-id", "start", "--no-progress", "--set", "env.vocab=default",
            "--set", "env.max_frags=4"]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
    (folder / "oracle_plugin.py").write_text(ORACLE)
    env = {"ORACLE_CALLS": str(folder / "calls.txt"), "PYTHONPATH": str(folder)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    sys.path.insert(0, str(folder))
    try:
        done = new_campaign(
            write_config(folder, folder / "runs" / "start", rounds=1), None, folder / "campaigns", "done"
        )
        done.run(progress=False)
        rows = (ROOT / "data" / "targets" / "CHEMBL244_Ki.csv").read_text().splitlines()[:41]
        (folder / "assay.csv").write_text("\n".join(rows) + "\n")
        lab_config = write_config(folder, folder / "runs" / "start", oracle='kind = "lab"')
        lab = new_campaign(lab_config, folder / "assay.csv", folder / "campaigns", "lab")
        assert lab.run(progress=False) == "waiting"
    finally:
        sys.path.remove(str(folder))
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return folder / "campaigns"


def page(campaigns_dir: Path, monkeypatch, tmp_path) -> AppTest:
    monkeypatch.setenv("MOLGFN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MOLGFN_CAMPAIGNS_DIR", str(campaigns_dir))
    at = AppTest.from_file(HOME, default_timeout=120)
    at.run()
    at.switch_page("pages/6_Campaigns.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_no_campaign_says_how_to_start_one(tmp_path, monkeypatch):
    at = page(tmp_path / "none", monkeypatch, tmp_path)
    assert any("No campaign" in i.value for i in at.info)


def test_a_finished_campaign_shows_its_rounds_batches_and_download(campaigns, tmp_path, monkeypatch):
    at = page(campaigns, monkeypatch, tmp_path)
    at.selectbox(key="campaign_pick").select("done").run()
    assert not at.exception
    assert any("**finished**" in m.value for m in at.markdown)
    rounds = at.dataframe[1].value
    assert rounds["round"].tolist() == [0, 1] and rounds["labels"].tolist() == [30, 34]
    assert at.selectbox(key="campaign_round").options == ["0", "1"]
    captions = [c.value for c in at.caption if c.value.startswith("R01-")]
    assert len(captions) == 4 and all("measured" in c and "predicted" in c for c in captions)
    assert "campaign_results" not in [u.key for u in at.file_uploader]  # no lab import for an oracle


def test_a_lab_campaign_waits_and_imports_results_from_the_page(campaigns, tmp_path, monkeypatch):
    at = page(campaigns, monkeypatch, tmp_path)
    at.selectbox(key="campaign_pick").select("lab").run()
    assert any("waits for lab results" in w.value for w in at.warning)
    batch = Campaign(campaigns / "lab").store.molecules(1)
    results = pd.DataFrame({"id": batch["id"], "label": [6.5, 7.0, "x", 8.0]}).to_csv(index=False)
    at.file_uploader(key="campaign_results").set_value(("results.csv", results.encode(), "text/csv")).run()
    at.button(key="campaign_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.success] == ["3 labels stored."]
    assert any("row 4" in w.value and "not a number" in w.value for w in at.warning)
    labels = Campaign(campaigns / "lab").store.molecules(1)["label"].tolist()
    assert labels[:2] == [6.5, 7.0] and labels[3] == 8.0
