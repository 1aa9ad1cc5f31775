"""The run store: WAL SQLite written one step per transaction, readable from another process meanwhile."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from molgfn.config import load_config
from molgfn.errors import MolgfnError
from molgfn.training.runs import RunStore, list_runs, validate_run_id

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cfg(tmp_path):
    return load_config(REPO / "configs" / "tiny.toml", [f"run.runs_dir='{tmp_path / 'runs'}'"])


def write_steps(store: RunStore, first: int, last: int, batch: int = 4) -> None:
    for step in range(first, last + 1):
        reward = np.linspace(0, 1, batch) * step / 100
        store.write_step(
            step,
            step * batch,
            step * 0.1,
            {"loss": 1.0 / step, "log_z": 0.1 * step, "reward_mean": float(reward.mean())},
            [f"C{'C' * i}O" for i in range(batch)],
            reward,
            {"qed": reward, "mw": 1 - reward},
        )


def test_create_writes_config_and_opens_by_id_or_path(cfg, tmp_path):
    store = RunStore.create(cfg, run_id="r1")
    assert store.path == tmp_path / "runs" / "r1"
    assert load_config(store.config_path) == cfg
    assert (store.path / "checkpoints").is_dir()
    assert RunStore.open("r1", tmp_path / "runs").path == store.path
    assert RunStore.open(store.path).path == store.path
    with pytest.raises(MolgfnError, match="exists"):
        RunStore.create(cfg, run_id="r1")


def test_default_run_id_is_name_and_time(cfg):
    a, b = RunStore.create(cfg), RunStore.create(cfg)
    assert a.id.startswith("tiny-") and b.id != a.id


def test_missing_run_is_an_error_naming_it(tmp_path):
    with pytest.raises(MolgfnError, match="run 'nope': not found"):
        RunStore.open("nope", tmp_path)
    with pytest.raises(MolgfnError, match="run folder not found"):
        RunStore.open(tmp_path / "nope")
    with pytest.raises(MolgfnError, match="not a run folder"):
        RunStore.open(tmp_path)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".", "..", "a b", "/etc", "x;rm"])
def test_unsafe_run_ids_are_refused(cfg, tmp_path, bad):
    with pytest.raises(MolgfnError, match="run id"):
        validate_run_id(bad)
    with pytest.raises(MolgfnError, match="run id"):
        RunStore.create(cfg, run_id=bad)
    if bad not in ("/etc", "."):  # existing folders without config.toml are not runs either
        with pytest.raises(MolgfnError):
            RunStore.open(bad, tmp_path)
    assert not (tmp_path / "x").exists()


def test_wal_mode_and_schema(cfg):
    store = RunStore.create(cfg, run_id="wal")
    write_steps(store, 1, 3)
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= {
        "steps",
        "molecules",
        "meta",
    }
    columns = [r[1] for r in conn.execute("PRAGMA table_info(steps)")]
    assert columns[:4] == ["step", "trajectories", "wall", "time"]
    assert {"loss", "log_z", "reward_mean"} <= set(columns)


def test_readers_see_metrics_and_molecules(cfg):
    store = RunStore.create(cfg, run_id="read")
    write_steps(store, 1, 5)
    steps = store.read_steps()
    assert steps["step"].tolist() == [1, 2, 3, 4, 5]
    assert steps["trajectories"].tolist() == [4, 8, 12, 16, 20]
    assert steps["loss"].tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert store.read_steps(["loss"], since_step=3).columns.tolist() == ["step", "loss"]
    mols = store.read_molecules()
    assert len(mols) == 20 and {"step", "smiles", "reward", "qed", "mw"} <= set(mols.columns)
    assert mols["mw"].to_numpy() == pytest.approx(1 - mols["reward"].to_numpy())
    top = store.read_molecules(top=3)
    assert top["reward"].tolist() == sorted(mols["reward"], reverse=True)[:3]
    unique = store.read_molecules(unique=True)
    assert sorted(unique["smiles"]) == sorted(set(mols["smiles"])) and (unique["step"] == 1).all()
    assert len(store.read_molecules(min_step=2, max_step=3)) == 8
    assert store.summary() == {"step": 5, "trajectories": 20, "best_reward": pytest.approx(0.05)}


def test_properties_are_recorded_once_per_molecule_with_the_step(cfg):
    store = RunStore.create(cfg, run_id="props")
    assert store.read_properties().empty
    smiles = ["CCO", "c1ccccc1", "CCO", "CC(=O)O"]
    qed = np.array([0.4, 0.5, 0.9, np.nan])  # the repeated CCO: its first value is kept
    store.write_step(1, 4, 0.1, {"loss": 1.0}, smiles, np.ones(4), None, {"qed": qed, "hbd": [1, 0, 1, 1]})
    store.write_step(
        2, 8, 0.2, {"loss": 1.0}, ["CCO", "CCN"], np.ones(2), None, {"qed": [0.1, 0.2], "hbd": [1, 1]}
    )
    props = store.read_properties().set_index("smiles")
    assert sorted(props.index) == ["CC(=O)O", "CCN", "CCO", "c1ccccc1"]
    assert props.loc["CCO", "qed"] == 0.4 and props.loc["CCN", "qed"] == 0.2
    assert np.isnan(props.loc["CC(=O)O", "qed"]) and props.loc["c1ccccc1", "hbd"] == 0
    with pytest.raises(ValueError, match="property 'qed' has 1 values for 2 smiles"):
        store.write_step(3, 10, 0.3, {"loss": 1.0}, ["C", "N"], np.ones(2), None, {"qed": [0.1]})
    assert store.read_steps()["step"].tolist() == [1, 2]  # nothing of the refused step was written


def test_a_run_made_before_properties_were_recorded_reads_none(cfg):
    store = RunStore.create(cfg, run_id="old")
    write_steps(store, 1, 2)
    store.close()
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("DROP TABLE properties")
    assert store.read_properties().empty and len(store.read_molecules()) == 8


def test_a_new_metric_adds_a_column_and_nan_is_null(cfg):
    store = RunStore.create(cfg, run_id="cols")
    store.write_step(1, 2, 0.1, {"loss": 1.0}, ["C", "O"], [0.1, 0.2])
    store.write_step(2, 4, 0.2, {"loss": float("nan"), "approx_kl": 0.01}, ["C", "O"], [0.1, 0.2])
    steps = store.read_steps()
    assert np.isnan(steps["loss"][1]) and np.isnan(steps["approx_kl"][0]) and steps["approx_kl"][1] == 0.01


def test_a_step_is_all_or_nothing(cfg):
    store = RunStore.create(cfg, run_id="atomic")
    write_steps(store, 1, 2)
    with pytest.raises(sqlite3.IntegrityError):  # the second molecule violates NOT NULL after the step row
        store.write_step(3, 12, 0.3, {"loss": 0.3}, ["CCO", None], [0.5, 0.5])
    assert store.read_steps()["step"].tolist() == [1, 2]
    assert set(store.read_molecules()["step"]) == {1, 2}
    write_steps(store, 3, 3)  # the writer carries on
    assert store.read_steps()["step"].tolist() == [1, 2, 3]


def test_truncate_after_removes_later_steps_and_molecules(cfg):
    store = RunStore.create(cfg, run_id="trunc")
    write_steps(store, 1, 6)
    assert store.truncate_after(4) == 2
    assert store.read_steps()["step"].tolist() == [1, 2, 3, 4]
    assert store.read_molecules()["step"].max() == 4
    write_steps(store, 5, 6)
    assert store.read_steps()["step"].tolist() == [1, 2, 3, 4, 5, 6]


WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from molgfn.training.runs import RunStore
    store = RunStore(sys.argv[1])
    for step in range(1, 201):
        r = np.full(16, step / 200)
        store.write_step(step, 16 * step, 0.01 * step, {"loss": 1 / step}, ["CCO"] * 16, r, {"qed": r})
        time.sleep(0.002)
    """
)


def test_reader_in_another_process_sees_whole_steps_while_writer_writes(cfg):
    store = RunStore.create(cfg, run_id="live")
    store.close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store.path)], cwd=REPO)
    seen = []
    try:
        while True:
            finished = writer.poll() is not None  # checked before reading: the last read is complete
            steps = store.read_steps()
            mols = store.read_molecules(expand_components=False)
            n = len(steps)
            assert steps["step"].tolist() == list(range(1, n + 1))
            # molecules were read after steps: never fewer whole steps, never a half step
            counts = mols.groupby("step").size()
            assert (counts == 16).all() and len(counts) >= n
            seen.append(n)
            if finished:
                break
            time.sleep(0.01)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert seen[-1] == 200 and len(set(seen)) > 2  # it read several intermediate states


def test_status_and_list_runs_show_a_dead_running_run_as_interrupted(cfg, tmp_path):
    done = RunStore.create(cfg, run_id="done")
    write_steps(done, 1, 3)
    done.set_status("finished", step=3, started="2026-01-01T00:00:00+00:00")
    dead = RunStore.create(cfg, run_id="dead")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead.set_status("running", pid=proc.pid, started="2026-01-02T00:00:00+00:00")
    alive = RunStore.create(cfg, run_id="alive")
    alive.set_status("running", started="2026-01-03T00:00:00+00:00")  # this process: alive
    assert dead.status()["status"] == "interrupted"
    assert json.loads(dead.status_path.read_text())["status"] == "running"  # reading changes nothing
    frame = list_runs(tmp_path / "runs").set_index("id")
    assert frame.loc["dead", "status"] == "interrupted"
    assert frame.loc["alive", "status"] == "running"
    assert frame.loc["done", "status"] == "finished"
    assert frame.loc["done", "step"] == 3 and frame.loc["done", "steps"] == cfg.train.steps
    assert frame.loc["done", "best_reward"] == pytest.approx(0.03)
    assert list(frame.index) == ["alive", "dead", "done"]  # newest first
    assert list_runs(tmp_path / "nothing").empty
