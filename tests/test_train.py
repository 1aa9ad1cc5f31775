"""The trainer shell: reproducibility, checkpoints, resume after kill -9, SIGTERM stop, failures.

Uses the toy Algorithm of tests/toy_algorithm.py (a linear model fitted by SGD with momentum, drawing from
the global python/numpy/torch generators), so these tests check the shell, not the GFlowNet."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from toy_algorithm import SMILES, build_toy

from molgfn.cli import main
from molgfn.config import load_config
from molgfn.errors import MolgfnError
from molgfn.training.runs import RunStore
from molgfn.training.trainer import StepOutput, Trainer, TrainingFailed, load_factory

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.toml"
TIMING = ["wall", "time", "sample_time", "step_time", "traj_per_s"]
TOY = "toy_algorithm:build_toy"


def toy_config(tmp_path, *overrides):
    return load_config(TINY, [f"run.runs_dir='{tmp_path / 'runs'}'", "train.batch_size=8", *overrides])


def train_in_process(cfg, run_id, *, resume=False):
    store = RunStore.create(cfg, run_id=run_id) if not resume else RunStore.open(run_id, cfg.run.runs_dir)
    trainer = Trainer.build(cfg, store, build_toy, progress=False)
    return trainer.run(resume=resume), store


def cli(*args, env=None, **kwargs):
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "molgfn", *args],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for_checkpoints(store_path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    log = store_path / "train.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("INFO checkpoint ") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} checkpoints after {timeout} s")


def check_store(store: RunStore, steps: int, batch: int) -> None:
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    frame = store.read_steps()
    assert frame["step"].tolist() == list(range(1, steps + 1))  # unique and contiguous
    assert frame["trajectories"].tolist() == [batch * s for s in range(1, steps + 1)]
    assert (store.read_molecules().groupby("step").size() == batch).all()
    assert len(store.read_molecules()) == steps * batch


def test_same_seed_gives_identical_metrics_and_molecules(tmp_path):
    cfg = toy_config(tmp_path, "train.steps=12")
    _, a = train_in_process(cfg, "a")
    _, b = train_in_process(cfg, "b")
    assert a.read_steps().drop(columns=TIMING).equals(b.read_steps().drop(columns=TIMING))
    assert a.read_molecules().equals(b.read_molecules())
    _, c = train_in_process(toy_config(tmp_path, "train.steps=12", "run.seed=1"), "c")
    assert not a.read_steps()["loss"].equals(c.read_steps()["loss"])


def test_stop_and_resume_reproduces_an_uninterrupted_run(tmp_path):
    straight_cfg = toy_config(tmp_path, "train.steps=20", "train.checkpoint_every=3")
    _, straight = train_in_process(straight_cfg, "straight")
    status, store = train_in_process(
        toy_config(tmp_path, "train.steps=11", "train.checkpoint_every=3"), "split"
    )
    assert status == "finished" and [s for s, _ in store.checkpoints()] == [9, 11]
    status, store = train_in_process(straight_cfg, "split", resume=True)
    assert status == "finished"
    assert store.read_steps().drop(columns=TIMING).equals(straight.read_steps().drop(columns=TIMING))
    assert store.read_molecules().equals(straight.read_molecules())
    assert [s for s, _ in store.checkpoints()] == [18, 20]  # the last two
    assert store.status()["status"] == "finished"


def test_checkpoint_holds_algorithm_rng_and_counters(tmp_path):
    _, store = train_in_process(toy_config(tmp_path, "train.steps=5", "train.checkpoint_every=2"), "ck")
    state = torch.load(store.checkpoint_path(5), weights_only=False)
    assert state["step"] == 5 and state["trajectories"] == 40
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert set(state["algorithm"]) == {"model", "log_z", "opt"}
    assert "[train]" in state["config"]
    assert not list(store.checkpoints_dir.glob(".*.tmp"))


def assert_no_process_left(marker: str, timeout: float = 10) -> None:
    """No process whose command line mentions ``marker`` (Linux /proc) remains after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    left.append(entry.name)
            except OSError:
                continue
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes left running: {left}"


def test_kill_9_mid_run_then_resume(tmp_path):
    """The real GFlowNet (molgfn.training.algorithm.build_algorithm) on configs/tiny.toml, killed with SIGKILL."""
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--no-progress"]
    proc = cli(
        "train", "--config", str(TINY), "--run-id", "k9", "--steps", "100000",
        "--set", "train.checkpoint_every=4", "--set", "train.batch_size=8", *common,
    )  # fmt: skip
    store = RunStore(runs / "k9")
    wait_for_checkpoints(store.path, 2, proc, timeout=120)
    time.sleep(0.15)  # land somewhere between checkpoints, mid-step or mid-write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert_no_process_left(str(runs))  # its scoring workers die with it
    assert store.status()["status"] == "interrupted"
    last_checkpoint = store.checkpoints()[-1][0]
    recorded = store.read_steps()["step"].max()
    assert last_checkpoint >= 8 and recorded >= last_checkpoint
    final = last_checkpoint + 6

    resumed = cli("train", "--resume", "k9", "--steps", str(final), *common)
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    assert out.strip() == str(runs / "k9")
    log = store.log_path.read_text()
    assert f"resumed from the checkpoint at step {last_checkpoint}" in log
    if recorded > last_checkpoint:
        assert f"removed {recorded - last_checkpoint} stored steps after step {last_checkpoint}" in log
    check_store(store, final, 8)
    assert store.status()["status"] == "finished"
    assert [s for s, _ in store.checkpoints()][-1] == final


def test_sigterm_stops_with_a_resumable_checkpoint_and_steps_extends(tmp_path):
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--no-progress"]
    proc = cli(
        "train", "--config", str(TINY), "--run-id", "term", "--steps", "100000",
        "--set", "train.checkpoint_every=5", "--set", "train.batch_size=8", *common,
    )  # fmt: skip
    store = RunStore(runs / "term")
    wait_for_checkpoints(store.path, 1, proc, timeout=120)
    assert store.request_stop() == proc.pid  # SIGTERM, as the dashboard sends it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    status = store.status()
    stopped_at = status["step"]
    assert status["status"] == "stopped" and "SIGTERM" in status["message"]
    assert store.checkpoints()[-1][0] == stopped_at  # a checkpoint at the very step it stopped
    assert store.read_steps()["step"].max() == stopped_at < 100000
    assert f"stopped at step {stopped_at}" in err

    resumed = cli("train", "--resume", str(store.path), "--steps", str(stopped_at + 4), *common)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    check_store(store, stopped_at + 4, 8)
    assert load_config(store.config_path).train.steps == stopped_at + 4
    assert store.status()["status"] == "finished"
    with pytest.raises(MolgfnError, match="not running"):
        store.request_stop()


def test_gflownet_same_seed_and_stop_resume_reproduce_a_run(tmp_path):
    """build_algorithm's state (policy, Adam, scheduler, replay buffer, its generator) is complete."""

    def run(run_id, steps, resume=False):
        cfg = load_config(
            TINY,
            [f"run.runs_dir='{tmp_path}'", f"train.steps={steps}", "train.checkpoint_every=4",
             "train.batch_size=8", "train.replay_size=16", "train.replay_fraction=0.25", "train.beta_min=2.0"],
        )  # fmt: skip
        store = RunStore.open(run_id, tmp_path) if resume else RunStore.create(cfg, run_id=run_id)
        assert Trainer.build(cfg, store, progress=False).run(resume=resume) == "finished"
        return store

    a, b = run("a", 10), run("b", 10)
    c = run("c", 7)
    c = run("c", 10, resume=True)
    reference = a.read_steps().drop(columns=TIMING)
    assert reference["loss"].notna().all() and len(reference) == 10
    assert b.read_steps().drop(columns=TIMING).equals(reference)
    assert c.read_steps().drop(columns=TIMING).equals(reference)
    assert c.read_molecules().equals(a.read_molecules())


def test_a_failing_step_marks_the_run_failed_with_the_traceback_in_the_log(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    monkeypatch.setenv("TOY_FAIL_AT", "4")
    code = main(
        ["train", "--config", str(TINY), "--run-id", "boom", "--runs-dir", str(runs), "--algorithm", TOY]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "training failed at step 4: RuntimeError: toy failure at step 4" in err
    store = RunStore(runs / "boom")
    assert store.status()["status"] == "failed"
    assert "Traceback" in store.log_path.read_text() and "toy failure" in store.log_path.read_text()
    assert store.read_steps()["step"].tolist() == [1, 2, 3]


class NanAlgorithm:
    def train_step(self, step):
        return StepOutput({"loss": float("nan")}, 1, ["C"], torch.zeros(1).numpy())

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_a_nan_loss_fails_the_run(tmp_path):
    cfg = toy_config(tmp_path)
    store = RunStore.create(cfg, run_id="nan")
    with pytest.raises(TrainingFailed, match="loss is nan at step 1"):
        Trainer(cfg, store, NanAlgorithm(), progress=False).run()
    assert store.status()["status"] == "failed"


def test_resume_refuses_changes_to_what_the_run_learns(tmp_path, capsys):
    cfg = toy_config(tmp_path, "train.steps=3")
    train_in_process(cfg, "fixed")
    runs = str(tmp_path / "runs")
    assert main(["train", "--resume", "fixed", "--runs-dir", runs, "--set", "train.lr=0.5"]) == 2
    assert "--set train.lr: cannot be changed on --resume" in capsys.readouterr().err
    assert main(["train", "--resume", "nope", "--runs-dir", runs]) == 2
    assert "run 'nope': not found" in capsys.readouterr().err
    assert main(["train", "--resume", "fixed", "--runs-dir", runs, "--config", str(TINY)]) == 2
    assert "do not give --config" in capsys.readouterr().err
    RunStore.open("fixed", runs).set_status("running", pid=os.getpid())  # as if training now
    assert main(["train", "--resume", "fixed", "--runs-dir", runs]) == 2
    assert "the run is still training" in capsys.readouterr().err


def test_runs_command_lists_runs(tmp_path, capsys):
    train_in_process(toy_config(tmp_path, "train.steps=3"), "listed")
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split()[:4] == ["id", "status", "step/steps", "trajectories"]
    assert re.match(r"listed\s+finished\s+3/3\s+24\s+0\.\d{3}\s+tb\s+\d{4}-", row)
    assert main(["runs", "--runs-dir", str(tmp_path / "empty")]) == 0
    assert "no runs" in capsys.readouterr().out


def test_bad_algorithm_factory_is_a_user_error():
    with pytest.raises(MolgfnError, match="expected MODULE:FUNCTION"):
        load_factory("nocolon")
    with pytest.raises(MolgfnError, match="cannot import module"):
        load_factory("no_such_module_xyz:build")
    with pytest.raises(MolgfnError, match="has no function"):
        load_factory("toy_algorithm:nothing")
    assert SMILES  # the toy module imported


def test_a_failed_build_leaves_no_run_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = [
        "train",
        "--config",
        str(TINY),
        "--runs-dir",
        str(runs),
        "--algorithm",
        "toy_algorithm:build_broken",
    ]
    assert main(args) == 2
    assert "model.hidden: the toy refuses to be built" in capsys.readouterr().err
    assert not runs.exists() or not list(runs.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_device_is_a_user_error(tmp_path, capsys):
    args = ["train", "--config", str(TINY), "--runs-dir", str(tmp_path), "--set", "run.device='cuda'"]
    assert main([*args, "--algorithm", TOY]) == 2
    assert "run.device: 'cuda' requested but torch finds no CUDA device" in capsys.readouterr().err


def test_a_second_signal_exits_at_once(tmp_path):
    runs = tmp_path / "runs"
    proc = cli(
        "train", "--config", str(TINY), "--run-id", "twice", "--runs-dir", str(runs), "--algorithm", TOY,
        "--no-progress", "--set", "train.checkpoint_every=1", env={"TOY_STEP_SECONDS": "0.5"},
    )  # fmt: skip
    store = RunStore(runs / "twice")
    wait_for_checkpoints(store.path, 1, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)  # inside the next (long) step
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    status = store.status()
    assert status["status"] == "interrupted" and "second SIGTERM" in status["message"]
    assert "second SIGTERM: exiting at once" in store.log_path.read_text()


class WrongLengthAlgorithm:
    """Reports 2 molecules with 3 rewards: the store refuses the step."""

    def train_step(self, step):
        return StepOutput({"loss": 1.0}, 2, ["C", "O"], torch.zeros(3).numpy())

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_a_failing_store_write_fails_the_run_and_records_nothing_of_that_step(tmp_path):
    cfg = toy_config(tmp_path)
    store = RunStore.create(cfg, run_id="badwrite")
    with pytest.raises(
        TrainingFailed, match="training failed at step 1: ValueError: step 1: 2 smiles but 3 rewards"
    ):
        Trainer(cfg, store, WrongLengthAlgorithm(), progress=False).run()
    assert store.status()["status"] == "failed"
    assert store.read_steps().empty and store.read_molecules().empty


def test_progress_bar_shows_steps_throughput_and_reward(tmp_path, capsys):
    cfg = toy_config(tmp_path, "train.steps=3")
    store = RunStore.create(cfg, run_id="bar")
    Trainer.build(cfg, store, build_toy, progress=True).run()
    err = capsys.readouterr().err
    assert "3/3" in err and "traj_s=" in err and "reward=" in err


@pytest.mark.parametrize(
    "extra",
    [
        ["objective.name='tb'"],
        ["objective.name='db'", "model.learned_backward=true"],
        ["objective.name='subtb'"],
        ["objective.name='fldb'", "train.replay_size=16", "train.replay_fraction=0.25"],
        [
            "objective.name='rlgfn'",
            "objective.trpo=true",
            "objective.coupled_backward=true",
            "model.learned_backward=true",
        ],
        ["objective.name='entppo'", "model.learned_backward=true"],
    ],
    ids=["tb", "db", "subtb", "fldb", "rlgfn", "entppo"],
)
def test_every_objective_resumes_exactly(tmp_path, extra):
    """Each objective's state_dict is complete: stopping after step 2 and resuming changes nothing."""

    def run(run_id, steps, resume=False):
        cfg = load_config(
            TINY,
            [
                f"run.runs_dir='{tmp_path}'",
                f"train.steps={steps}",
                "train.checkpoint_every=2",
                "train.batch_size=4",
                *extra,
            ],
        )
        store = RunStore.open(run_id, tmp_path) if resume else RunStore.create(cfg, run_id=run_id)
        assert Trainer.build(cfg, store, progress=False).run(resume=resume) == "finished"
        return store

    straight = run("straight", 4)
    run("split", 2)
    split = run("split", 4, resume=True)
    assert split.read_steps().drop(columns=TIMING).equals(straight.read_steps().drop(columns=TIMING))
    assert split.read_molecules().equals(straight.read_molecules())


def test_each_logged_figure_carries_the_step_it_belongs_to(tmp_path):
    """The step-k row of the store and the step-k summary line of train.log describe the k-th update: the
    summary statistics the algorithm computes for the log (intdiv_top1000) land on exactly the logged steps."""
    cfg = load_config(
        TINY, [f"run.runs_dir='{tmp_path}'", "train.steps=7", "train.metrics_every=3", "train.batch_size=8"]
    )
    store = RunStore.create(cfg, run_id="aligned")
    assert Trainer.build(cfg, store, progress=False).run() == "finished"
    steps = store.read_steps()
    assert list(steps["step"]) == list(range(1, 8))
    assert list(steps["trajectories"]) == [8 * k for k in range(1, 8)]
    with_summary = steps.loc[steps["intdiv_top1000"].notna(), "step"].tolist()
    assert with_summary == [3, 6]
    logged = re.findall(r"step (\d+)/7 \| traj (\d+) \|.*", store.log_path.read_text())
    assert [(int(s), int(t)) for s, t in logged] == [(3, 24), (6, 48), (7, 56)]
    lines = [line for line in store.log_path.read_text().splitlines() if "| traj " in line]
    for line, step in zip(lines, (3, 6)):
        value = float(re.search(r"intdiv_top1000 ([-\d.e+]+)", line).group(1))
        assert value == pytest.approx(steps.loc[steps["step"] == step, "intdiv_top1000"].item(), rel=1e-3)
        loss = float(re.search(r"\| loss ([-\d.e+]+)", line).group(1))
        assert loss == pytest.approx(steps.loc[steps["step"] == step, "loss"].item(), rel=1e-3)
    assert "intdiv_top1000" not in lines[2]  # the last step, between summaries: its own figures only


def test_a_run_recorded_by_an_older_layout_resumes(tmp_path):
    """A run created before the package layout moved records its algorithm as molgfn.gflownet:build_algorithm
    and its config holds objective.backward_guide = "forward": it resumes and finishes."""
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--no-progress"]
    assert main(["train", "--config", str(TINY), "--run-id", "old", "--steps", "4", *common,
                 "--set", "train.batch_size=8", "--set", "train.checkpoint_every=2"]) == 0  # fmt: skip
    store = RunStore(runs / "old")
    store.set_meta("algorithm", "molgfn.gflownet:build_algorithm")
    text = store.config_path.read_text()
    store.config_path.write_text(text.replace("[objective]\n", '[objective]\nbackward_guide = "forward"\n'))
    assert 'backward_guide = "forward"' in store.config_path.read_text()
    assert main(["train", "--resume", "old", "--steps", "6", *common]) == 0
    assert store.status()["status"] == "finished"
    assert list(store.read_steps()["step"]) == list(range(1, 7))
    assert "resumed from the checkpoint at step 4" in store.log_path.read_text()
