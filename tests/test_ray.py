"""The Ray backend: a two-host cluster, a worker killed mid-step, the same molecules as the local backend.

Every Ray process runs in network namespaces these tests create and delete (tests/netns.py); where they
cannot be created the tests are skipped with the reason, never run outside one.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import netns
import numpy as np
import pandas as pd
import pytest

from molgfn.training.runs import RunStore

REASON = netns.ray_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=REASON or "")]
REPO = Path(__file__).resolve().parents[1]
MOLGFN = [sys.executable, "-m", "molgfn"]

# an expensive oracle that takes a while and records every molecule it computes (and in which process)
SLOW_ORACLE = """
import os, time

def slow(smiles):
    time.sleep(0.4)
    with open(os.environ["ORACLE_CALLS"], "a") as fh:
        for s in smiles:
            fh.write(f"{os.getpid()} {s}\\n")
    return [len(s) / 50 for s in smiles]
"""


def train_args(runs: Path, *sets: str, steps: int = 6) -> list[str]:
    overrides = ["train.replay_size=0", "train.metrics_every=2", "train.checkpoint_every=2", *sets]
    return [
        *MOLGFN, "train", "--config", "tiny", "--steps", str(steps), "--runs-dir", str(runs),
        "--no-progress", *[a for s in overrides for a in ("--set", s)],
    ]  # fmt: skip


def only_run(runs: Path) -> RunStore:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return RunStore.open(folder)


def molecules_per_step(store: RunStore) -> dict[int, int]:
    frame = store.read_molecules()
    return frame.groupby("step").size().to_dict()


def test_two_host_cluster_trains_and_both_nodes_score(tmp_path):
    runs = tmp_path / "runs"
    with netns.ray_cluster(cpus=1) as cluster:
        done = cluster.head.run(
            train_args(runs, "run.backend=ray", f"run.ray_address={cluster.address}"), cwd=REPO, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        store = only_run(runs)
        assert store.status()["status"] == "finished"
        batch = store.config().train.batch_size
        assert molecules_per_step(store) == {step: batch for step in range(1, 7)}
        nodes = json.loads(store.meta()["scoring_nodes"])
        assert set(nodes) == {"10.201.0.1", "10.201.0.2"}, nodes
        assert all(n > 0 for n in nodes.values()) and sum(nodes.values()) == 6 * batch
        log = store.log_path.read_text()
        assert "scoring on Ray: 2 node(s), 2 CPU(s): 10.201.0.1, 10.201.0.2" in log
    # the cluster is stopped: its namespaces are gone with every process in them
    assert not [n for n in os.popen("ip netns list").read().split() if n.startswith("mgA")]


@pytest.fixture
def oracle(tmp_path):
    (tmp_path / "slow_oracle.py").write_text(SLOW_ORACLE)
    config = tmp_path / "slow.toml"
    text = (
        (REPO / "configs" / "tiny.toml")
        .read_text()
        .replace("[reward]\n", f'[reward]\noracle_cache = "{tmp_path / "oracle.sqlite"}"\n')
    )
    extra = 'kind = "python"\nname = "slow"\nfunction = "slow_oracle:slow"\nexpensive = true\n'
    config.write_text(text + "\n[[reward.components]]\n" + extra)
    calls = tmp_path / "calls.txt"
    env = {"ORACLE_CALLS": str(calls), "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    return config, calls, env


def test_a_killed_worker_loses_no_molecule(tmp_path, oracle):
    config, calls, env = oracle
    runs = tmp_path / "runs"
    argv = train_args(runs, "run.backend=ray", "run.ray_actors=2", steps=8)
    argv[argv.index("tiny")] = str(config)
    with netns.loopback() as ns:
        proc = ns.popen(
            argv, cwd=REPO, env=env, stdout=open(tmp_path / "out", "w"), stderr=open(tmp_path / "err", "w")
        )
        # wait for the second step, then kill an actor while it scores
        deadline = time.monotonic() + 180
        killed = None
        while time.monotonic() < deadline and proc.poll() is None:
            if calls.exists() and len(calls.read_text().splitlines()) >= 20:
                busy = ns.processes("ray::_Worker.run") or ns.processes("ray::_Worker")
                if busy:
                    killed = busy[0]
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.05)
        assert killed is not None, (tmp_path / "err").read_text()[-3000:]
        assert proc.wait(timeout=300) == 0, (tmp_path / "err").read_text()[-3000:]
    store = only_run(runs)
    assert store.status()["status"] == "finished"
    batch = store.config().train.batch_size
    assert molecules_per_step(store) == {step: batch for step in range(1, 9)}
    log = store.log_path.read_text()
    assert "scored again after their actor died" in log, log
    # the oracle's values: one per molecule, each computed once by a live actor or taken from the cache
    with sqlite3.connect(tmp_path / "oracle.sqlite") as db:
        states = collections.Counter(s for (s,) in db.execute("SELECT state FROM oracle_values"))
        values = dict(db.execute("SELECT smiles, value FROM oracle_values"))
    assert set(states) == {"done"}, states
    # every stored molecule's oracle value is the one in the cache (none lost, none scored differently)
    frame = store.read_molecules()
    from rdkit import Chem

    for smiles, slow in zip(frame["smiles"], frame["slow_raw"]):
        assert values[Chem.CanonSmiles(smiles)] == pytest.approx(slow)


def test_same_seed_same_molecules_and_scores_on_either_backend(tmp_path):
    local, ray_runs = tmp_path / "local", tmp_path / "ray"
    first = subprocess.run(
        train_args(local, "run.workers=1", steps=4), cwd=REPO, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr[-3000:]
    # molgfn sample scores its table on the Ray actors, with a scoring bar
    sample = [*MOLGFN, "sample", str(only_run(local).path), "--n", "40", "--seed", "0"]
    on_local = subprocess.run(
        [*sample, "--out", str(tmp_path / "local.csv")], cwd=REPO, capture_output=True, text=True
    )
    assert on_local.returncode == 0, on_local.stderr[-3000:]
    with netns.loopback() as ns:
        second = ns.run(train_args(ray_runs, "run.backend=ray", "run.ray_actors=2", steps=4), cwd=REPO)
        assert second.returncode == 0, second.stderr[-3000:]
        on_ray = ns.run([*sample, "--backend", "ray", "--out", str(tmp_path / "ray.csv")], cwd=REPO)
        assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    a, b = only_run(local).read_molecules(), only_run(ray_runs).read_molecules()
    assert len(a) == 4 * 16
    assert a["smiles"].tolist() == b["smiles"].tolist()
    assert a["reward"].tolist() == b["reward"].tolist()  # bit for bit
    assert "scoring: 100%" in on_ray.stderr and "scoring: 100%" in on_local.stderr
    # the Ray backend rolls out in this process (the local one shares it with its worker): other molecules,
    # scored as the local reward scores them
    from molgfn.candidates.generate import load_generator

    on_actors = pd.read_csv(tmp_path / "ray.csv")
    assert len(on_actors) == 40
    gen = load_generator(only_run(local).path)
    try:
        here = gen.reward.score(on_actors["smiles"].tolist()).score
    finally:
        gen.close()
    assert on_actors["reward"].tolist() == np.round(here, 4).tolist()


def test_the_cluster_gone_checkpoints_stops_and_resumes_on_the_local_backend(tmp_path, oracle):
    config, calls, env = oracle
    runs = tmp_path / "runs"
    with netns.ray_cluster(cpus=1, subnet=202, env=env) as cluster:
        argv = train_args(runs, "run.backend=ray", f"run.ray_address={cluster.address}", steps=30)
        argv[argv.index("tiny")] = str(config)
        err = tmp_path / "err"
        proc = cluster.head.popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(err, "w"))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if (runs.exists() and any(runs.iterdir())) and only_run(runs).checkpoints():
                break
            time.sleep(0.2)
        assert proc.poll() is None, err.read_text()[-3000:]
        # every Ray process on both hosts dies (the head's GCS and raylet included); the driver lives on
        cluster.workers[0].kill_all()
        for pid in cluster.head.pids():
            if pid != proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        code = proc.wait(timeout=300)
    message = err.read_text()
    assert code == 3, message[-3000:]
    store = only_run(runs)
    status = store.status()
    assert status["status"] == "stopped" and "--resume" in status["message"], status
    stopped_at = status["step"]
    assert 2 <= stopped_at < 30 and store.checkpoints()[-1][0] == stopped_at
    assert "resume with --resume" in message and "Traceback" not in message, message[-3000:]
    # the run goes on, on the local backend, from where it stopped
    resume = [*MOLGFN, "train", "--resume", store.id, "--runs-dir", str(runs), "--no-progress",
              "--set", "run.backend=local", "--set", "run.workers=0"]  # fmt: skip
    done = subprocess.run(resume, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert store.status()["status"] == "finished"
    batch = store.config().train.batch_size
    assert molecules_per_step(store) == {step: batch for step in range(1, 31)}
