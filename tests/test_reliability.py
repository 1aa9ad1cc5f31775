"""Fault injection: what molgfn promises when files are damaged, disks fill, processes die or lie, and input
is implausible (docs/reliability.md lists each promise and the test here that checks it).

Each test reproduces one finding of an adversarial review; the training tests use the toy Algorithm of
tests/toy_algorithm.py where the GFlowNet itself does not matter, the real one on configs/tiny.toml where it
does (sampling, worker processes, the kill -9 loop)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from molgfn.config import load_config
from molgfn.errors import MolgfnError
from molgfn.training.runs import RunStore, list_runs, process_start
from molgfn.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.toml"
TOY = "toy_algorithm:build_toy"
TIMING = ["wall", "time", "sample_time", "step_time", "traj_per_s"]


# ------------------------------------------------------------------------------------------------ helpers
def toy_run(runs: Path, run_id: str, steps: int, *overrides: str) -> RunStore:
    cfg = load_config(
        TINY,
        [
            f"run.runs_dir='{runs}'",
            "train.batch_size=8",
            f"train.steps={steps}",
            "train.checkpoint_every=10",
            *overrides,
        ],
    )
    store = RunStore.create(cfg, run_id=run_id)
    Trainer.build(cfg, store, TOY, progress=False).run()
    return RunStore.open(run_id, runs)


def molgfn(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    return subprocess.run(
        [sys.executable, "-m", "molgfn", *args],
        cwd=kwargs.pop("cwd", REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def corrupt_tensor(path: Path, n: int = 8) -> None:
    """Change ``n`` bytes in the middle of the largest tensor record of a torch.save zip file."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    for k in range(n):
        raw[start + k] ^= 0xFF
    path.write_bytes(bytes(raw))


def steps_table(store: RunStore):
    frame = store.read_steps()
    return frame.drop(columns=[c for c in TIMING if c in frame.columns])


def check_store(store: RunStore, steps: int, batch: int) -> None:
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    frame = store.read_steps()
    assert frame["step"].tolist() == list(range(1, steps + 1))  # unique and contiguous
    counts = store.read_molecules().groupby("step").size()
    assert counts.index.tolist() == list(range(1, steps + 1))
    assert (counts == batch).all()


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs mounted at ``path`` (needs root and mount rights; the test is skipped otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def session_processes(sid: int) -> list[str]:
    """Live (non-zombie) processes of session ``sid``: 'pid command'."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(f"{entry.name} {cmd[:120]}")
    return found


def wait_gone(sid: int, seconds: float = 15.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = session_processes(sid)
        if not left:
            return []
        time.sleep(0.2)
    return session_processes(sid)


# ----------------------------------------------------------------------- 1. corrupted checkpoint accepted
def test_a_corrupted_latest_checkpoint_is_reported_and_the_previous_good_one_used(tmp_path):
    runs = tmp_path / "runs"
    reference = toy_run(runs, "reference", 40)
    store = toy_run(runs, "damaged", 30)  # checkpoints at steps 20 and 30
    latest = store.checkpoints()[-1][1]
    assert latest.name == "step_00000030.pt"
    corrupt_tensor(latest)

    done = molgfn("train", "--resume", "damaged", "--runs-dir", str(runs), "--steps", "40", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "step_00000030.pt" in done.stderr and "SHA-256" in done.stderr
    assert "step_00000020.pt" in done.stderr  # says which one it resumed from
    store = RunStore.open("damaged", runs)
    check_store(store, 40, 8)
    # steps 21..30 were trained again from the good checkpoint: the run equals one never interrupted
    assert steps_table(store).equals(steps_table(reference))


def test_sample_refuses_a_damaged_checkpoint_and_a_run_falls_back_to_its_good_one(tmp_path):
    runs = tmp_path / "runs"
    cfg = load_config(TINY, [f"run.runs_dir='{runs}'", "train.steps=10", "train.checkpoint_every=5"])
    store = RunStore.create(cfg, run_id="tiny")
    Trainer.build(cfg, store, progress=False).run()
    good, latest = (p for _, p in RunStore.open("tiny", runs).checkpoints())
    corrupt_tensor(latest)

    done = molgfn("sample", str(latest), "--n", "5", "--out", str(tmp_path / "a.csv"))
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        f"molgfn: error: {latest}: damaged checkpoint, its SHA-256 does not match the one written with it"
    ]
    assert not (tmp_path / "a.csv").exists()

    done = molgfn("sample", str(runs / "tiny"), "--n", "5", "--out", str(tmp_path / "b.csv"))
    assert done.returncode == 0, done.stderr
    assert f"using {good.name}" in done.stderr
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 6


def test_a_checkpoint_written_before_checksums_is_checked_by_its_zip_crc(tmp_path):
    from molgfn.training.checkpoints import hash_path, read_checkpoint

    store = toy_run(tmp_path / "runs", "old", 10)
    path = store.checkpoints()[-1][1]
    hash_path(path).unlink()  # as written by an older molgfn
    assert read_checkpoint(path)["step"] == 10
    corrupt_tensor(path)
    with pytest.raises(MolgfnError, match="fails its CRC-32 check"):
        read_checkpoint(path)


# ------------------------------------------------------------------------------ 2. silent restart from zero
def test_resume_without_an_intact_checkpoint_refuses_unless_restart(tmp_path):
    runs = tmp_path / "runs"
    store = toy_run(runs, "cut", 20)
    for _, path in store.checkpoints():
        path.write_bytes(path.read_bytes()[:100])  # every checkpoint truncated

    done = molgfn("train", "--resume", "cut", "--runs-dir", str(runs), "--no-progress")
    assert done.returncode == 2
    lines = error_lines(done.stderr)
    assert lines[-1].startswith(
        "molgfn: error: --resume cut: 2 checkpoint(s), none intact, and 20 steps stored"
    )
    assert "--restart" in lines[-1]
    assert len(store.read_steps()) == 20  # nothing deleted
    assert store.status()["status"] == "finished"

    done = molgfn("train", "--resume", "cut", "--restart", "--runs-dir", str(runs), "--no-progress")
    assert done.returncode == 0, done.stderr
    check_store(store, 20, 8)
    assert store.status()["status"] == "finished"


# ------------------------------------------------------- 3. damaged stores, full disks, read-only folders
def test_a_garbled_database_is_listed_as_damaged_and_the_other_runs_are_unaffected(tmp_path):
    runs = tmp_path / "runs"
    toy_run(runs, "good", 10)
    bad = toy_run(runs, "bad", 10)
    with open(bad.db_path, "r+b") as fh:
        fh.write(b"garbage garbage!")  # the 16-byte SQLite header

    frame = list_runs(runs)
    row = frame.set_index("id").loc["bad"]
    assert row["status"] == "damaged" and "metrics.sqlite" in row["message"]
    assert frame.set_index("id").loc["good", "step"] == 10

    done = molgfn("runs", "--runs-dir", str(runs))
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert lines["good"].split()[1:3] == ["finished", "10/10"]
    assert lines["bad"].split()[1] == "damaged"

    done = molgfn("train", "--resume", "bad", "--runs-dir", str(runs), "--no-progress")
    assert done.returncode == 2
    assert len(error_lines(done.stderr)) == 1 and "metrics.sqlite" in done.stderr

    from streamlit.testing.v1 import AppTest

    os.environ["MOLGFN_RUNS_DIR"] = str(runs)
    try:
        for page in ("Home.py", "pages/1_Train.py", "pages/2_Monitor.py"):
            app = AppTest.from_file(str(REPO / "app" / page), default_timeout=60).run()
            assert not app.exception, (page, [e.value for e in app.exception])
    finally:
        os.environ.pop("MOLGFN_RUNS_DIR")


def test_a_full_disk_fails_the_run_with_one_line_and_a_reason_and_no_temporary_files(tmp_path):
    with tmpfs(tmp_path / "small", "600k") as disk:
        runs = disk / "runs"
        done = molgfn(
            "train", "--config", str(TINY), "--algorithm", TOY, "--runs-dir", str(runs), "--run-id", "full",
            "--set", "train.steps=100000", "--set", "train.batch_size=64", "--set", "train.checkpoint_every=50",
            "--no-progress",
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        lines = error_lines(done.stderr)
        assert len(lines) == 1 and lines[0].startswith("molgfn: error: training failed at step"), lines
        assert "full" in lines[0] or "No space" in lines[0]
        status = json.loads((runs / "full" / "status.json").read_text())
        assert status["status"] == "failed" and status["message"]
        assert not [p for p in (runs / "full").rglob("*.tmp")]
        stored = len(RunStore.open("full", runs).read_steps())

        done = molgfn("train", "--resume", "full", "--runs-dir", str(runs), "--no-progress")
        assert done.returncode != 0
        lines = error_lines(done.stderr)
        assert len(lines) == 1 and "no transaction is active" not in lines[0]
        assert "full" in lines[0] or "No space" in lines[0], lines

        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        done = molgfn("train", "--resume", "full", "--runs-dir", str(runs), "--no-progress")
        assert done.returncode == 2
        lines = error_lines(done.stderr)
        assert len(lines) == 1 and "read-only file system" in lines[0].lower(), lines
        done = molgfn("runs", "--runs-dir", str(runs))
        assert done.returncode == 0, done.stderr
        row = done.stdout.splitlines()[1].split()
        assert row[0] == "full" and row[2].split("/")[0] == str(stored)  # read, not shown as 0


READER = """
import sys, pathlib
from molgfn.training.runs import RunStore, list_runs
runs, stop, out = map(pathlib.Path, sys.argv[1:4])
errors, reads = [], 0
while not stop.exists():
    try:
        for row in list_runs(runs).itertuples():
            store = RunStore(pathlib.Path(row.path))
            store.read_steps()
            store.meta()
            reads += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
out.write_text("\\n".join([str(reads), *errors]))
"""


def test_readers_never_see_a_half_made_run(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    stop, out = tmp_path / "stop", tmp_path / "reader.txt"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(runs), str(stop), str(out)], cwd=REPO)
    try:
        time.sleep(3)  # the reader is polling
        cfg = load_config(TINY, [f"run.runs_dir='{runs}'"])
        for k in range(150):
            RunStore.create(cfg, run_id=f"r{k}").close()
    finally:
        stop.touch()
        reader.wait(timeout=60)
    reads, *errors = out.read_text().split("\n")
    assert int(reads) > 150 and errors == []
    assert len(list_runs(runs)) == 150


def test_a_reader_at_any_point_of_a_run_creation_sees_no_half_made_run(tmp_path, monkeypatch):
    """A reader looks at every moment a file of the new run appears (each database open, each file write)."""
    import molgfn.training.runs as runs_module

    runs = tmp_path / "runs"
    seen: list[str] = []

    def read_all(moment: str) -> None:
        for row in list_runs(runs).itertuples():
            try:
                store = RunStore(Path(row.path))
                store.read_steps()
                store.meta()
                seen.append(f"{moment}: {row.id} {row.status}")
            except Exception as exc:  # noqa: BLE001 - every error is the finding
                seen.append(f"{moment}: ERROR {type(exc).__name__}: {exc}")

    def spy(name):
        real = getattr(runs_module, name)

        def wrapper(*args, **kwargs):
            read_all(f"before {name}")
            result = real(*args, **kwargs)
            read_all(f"after {name}")
            return result

        monkeypatch.setattr(runs_module, name, wrapper)

    spy("open_writer")
    spy("_atomic_write_text")
    RunStore.create(load_config(TINY, [f"run.runs_dir='{runs}'"]), run_id="new").close()
    assert not [s for s in seen if "ERROR" in s], seen
    assert seen and seen[-1].endswith("new created")


# ---------------------------------------------------------------------------- 4. the PID in status.json
@pytest.mark.parametrize("recorded_start", ["none", "wrong"])
def test_a_live_unrelated_pid_in_status_json_is_recognised_as_stale(tmp_path, recorded_start):
    runs = tmp_path / "runs"
    store = toy_run(runs, "stale", 10)
    other = subprocess.Popen(["sleep", "60"])
    try:
        status = json.loads(store.status_path.read_text())
        status.update(status="running", pid=other.pid)
        status["pid_start"] = None if recorded_start == "none" else process_start(other.pid) + 1
        store.status_path.write_text(json.dumps(status))

        assert store.status()["status"] == "interrupted"
        with pytest.raises(MolgfnError, match="not running"):
            store.request_stop()
        assert other.poll() is None  # no signal reached it
        done = molgfn("train", "--resume", "stale", "--runs-dir", str(runs), "--steps", "12", "--no-progress")
        assert done.returncode == 0, done.stderr
        assert other.poll() is None
        check_store(store, 12, 8)
    finally:
        other.kill()
        other.wait()


# ----------------------------------------------------------------------------------------------- 5. orphans
def test_no_worker_outlives_a_killed_trainer(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "molgfn", "train", "--config", str(TINY), "--runs-dir", str(runs), "--run-id", "k",
         "--set", "train.steps=100000", "--set", "run.workers=1", "--set", "reward.workers=1", "--no-progress"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        log = runs / "k" / "train.log"
        while not (log.exists() and "INFO checkpoint" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        workers = [p for p in session_processes(proc.pid) if not p.startswith(f"{proc.pid} ")]
        assert len(workers) >= 2  # the scoring worker and the descriptor pool, at least
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_gone(proc.pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------- 6. implausible input
def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_outside_the_plausible_range_are_dropped_and_counted(tmp_path):
    from molgfn.proxy.data import load_assay_table

    rows = ["CCO,100", "CCN,1e300", "CCC,0.5", "c1ccccc1O,1e-300", "CCCl,5000"]
    table, report = load_assay_table(
        write(tmp_path / "a.csv", "smiles,value\n" + "\n".join(rows)), units="nM"
    )
    assert sorted(table["smiles"]) == ["CCC", "CCCl", "CCO"]
    assert report.n_bad_label == 2
    assert report.dropped["row"].tolist() == [2, 4]
    assert all("implausible label" in r for r in report.dropped["reason"])
    assert (table["label"].between(0, 15)).all()

    _, report = load_assay_table(write(tmp_path / "p.csv", "smiles,pKi\nCCO,7.5\nCCN,1e300\nCCC,-3\n"))
    assert report.n_molecules == 1 and report.n_bad_label == 2  # a p-scale column is checked too
    _, report = load_assay_table(write(tmp_path / "y.csv", "smiles,y\nCCO,0.3\nCCN,1e300\n"))
    assert report.n_molecules == 1 and "declare --units" in report.dropped["reason"][0]


def test_tables_that_are_not_text_are_read_or_refused_by_name(tmp_path):
    from molgfn.proxy.data import load_assay_table

    text = "smiles,pchembl_value\nCCO,6.1\nCCN,7.2\nc1ccccc1,5.0\n"
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "b.csv").write_bytes(gzip.compress(text.encode()))  # gzip under a plain name
    for name in ("a.csv.gz", "b.csv"):
        table, report = load_assay_table(tmp_path / name)
        assert report.n_molecules == 3 and report.columns == ["smiles", "pchembl_value"]
        assert report.file_format == "csv, gzip"
    with zipfile.ZipFile(tmp_path / "c.xlsx", "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(MolgfnError, match=r"c\.xlsx: a spreadsheet workbook .* save the sheet as CSV"):
        load_assay_table(tmp_path / "c.xlsx")
    with pytest.raises(MolgfnError, match=r"used more than once: 'smiles'"):
        load_assay_table(write(tmp_path / "d.csv", "smiles,smiles,pki\nCCO,CCN,6\n"))


def test_proxy_train_checks_its_output_before_training_and_never_saves_nan_metrics(
    tmp_path, monkeypatch, capsys
):
    data = REPO / "data" / "targets"
    table = data / "CHEMBL2047_EC50.csv"
    start = time.monotonic()
    done = molgfn("proxy", "train", str(table), "--out", "/proc/x.pt", "--model", "fp", "--quiet")
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        "molgfn: error: --out /proc/x.pt: cannot write in /proc (No such file or directory)"
    ] or (len(error_lines(done.stderr)) == 1 and "--out /proc/x.pt: cannot write in /proc" in done.stderr)
    assert "held-out" not in done.stdout and time.monotonic() - start < 60

    import molgfn.proxy.train as proxy_train
    from molgfn.cli import main

    real = proxy_train.train_proxy

    def nan_metrics(*args, **kwargs):
        proxy, metrics = real(*args, **kwargs)
        metrics["families"][metrics["chosen"]]["test"]["rmse"] = float("nan")
        return proxy, metrics

    monkeypatch.setattr(proxy_train, "train_proxy", nan_metrics)
    out = tmp_path / "p.pt"
    assert (
        main(["proxy", "train", str(table), "--out", str(out), "--model", "fp", "--ensemble", "1", "--quiet"])
        == 2
    )
    assert "non-finite held-out metrics (families.fp.test.rmse); no proxy saved" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------------- 7. dashboard hardening
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def websocket_status(port: int, host_header: str) -> str:
    import base64

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n").encode()
        )  # fmt: skip
        return s.recv(200).decode(errors="replace").split("\r\n")[0]


def test_the_dashboard_accepts_only_its_own_host_names(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "molgfn", "app", "--port", str(port), "--runs-dir", str(tmp_path / "runs")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        assert websocket_status(port, f"127.0.0.1:{port}").endswith("101 Switching Protocols")
        assert websocket_status(port, f"localhost:{port}").endswith("101 Switching Protocols")
        assert websocket_status(port, "evil.example").endswith("403 Forbidden")  # DNS rebinding
        assert websocket_status(port, f"evil.example:{port}").endswith("403 Forbidden")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_user_strings_are_shown_as_plain_text(tmp_path):
    from streamlit.testing.v1 import AppTest

    from molgfn.dashboard.ui import plain

    crafted = "boom ![x](http://evil.example/i.png) [click](http://evil.example) <img src=x> :red[hi] **b**"
    escaped = plain(crafted)
    assert not re.search(r"(?<!\\)[\[\]()<>*:!]", escaped)  # every special character escaped
    assert escaped.replace("\\", "") == crafted  # nothing lost, only escaped

    runs = tmp_path / "runs"
    store = toy_run(runs, "crafted", 10)
    store.set_status("failed", message=crafted)
    os.environ["MOLGFN_RUNS_DIR"] = str(runs)
    try:
        app = AppTest.from_file(str(REPO / "app" / "pages" / "1_Train.py"), default_timeout=60).run()
    finally:
        os.environ.pop("MOLGFN_RUNS_DIR")
    assert not app.exception
    shown = [e.value for e in app.error]
    assert escaped in shown and crafted not in shown


def test_uploads_with_the_same_name_never_overwrite_each_other(tmp_path):
    from molgfn.dashboard.forms import save_upload

    paths = [
        save_upload("assay data.csv", f"smiles,pki\nCCO,{k}\n".encode(), tmp_path, 10**6) for k in range(5)
    ]
    assert len(set(paths)) == 5
    assert [p.read_text().splitlines()[1] for p in paths] == [f"CCO,{k}" for k in range(5)]


# ------------------------------------------------------------------------------------- the kill -9 loop
@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1], ids=["no-workers", "workers"])
def test_ten_random_kills_lose_nothing_duplicate_nothing_and_leave_no_process(tmp_path, workers):
    runs = tmp_path / "runs"
    rng = random.Random(workers)
    steps, batch = 60, 16
    settings = [
        "--set", f"train.steps={steps}", "--set", f"train.batch_size={batch}", "--set", "train.checkpoint_every=3",
        "--set", f"run.workers={workers}", "--set", f"reward.workers={workers}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    sessions = []
    kills = 0
    first = True
    while kills < 10:
        args = (
            ["--config", str(TINY), "--run-id", "loop", *settings]
            if first
            else ["--resume", "loop", "--steps", str(steps)]
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "molgfn", "train", *args, "--runs-dir", str(runs), "--no-progress"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        sessions.append(proc.pid)
        first = False
        status = runs / "loop" / "status.json"
        deadline = time.monotonic() + 120
        while proc.poll() is None and not (status.exists() and '"running"' in status.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))  # a random moment: mid-step, mid-write or mid-checkpoint
        if proc.poll() is not None:  # finished before the kill: the next start trains longer
            assert proc.returncode == 0, proc.stderr.read()
            steps += 30
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = RunStore.open("loop", runs).status()["status"]
        if state == "finished":  # it finished between the check and the kill: not a kill mid-run
            steps += 30
            continue
        assert state == "interrupted", (kills, state, proc.stderr.read())
        kills += 1
    done = molgfn(
        "train", "--resume", "loop", "--runs-dir", str(runs), "--steps", str(steps), "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    store = RunStore.open("loop", runs)
    check_store(store, steps, batch)
    assert store.status()["status"] == "finished"
    for sid in sessions:
        assert wait_gone(sid) == [], sid
