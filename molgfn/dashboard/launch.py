"""Run management for the dashboard: launching trainings in the background, a queue, progress, forms.

The dashboard never trains in its own process. A launched run is the ordinary CLI,
``python -m molgfn train --config FILE --run-id ID --runs-dir DIR --no-progress``, started as an argv
list (never a shell) in a new session, so it survives page reloads and a restart (or kill) of the
dashboard; its status is read back from the run store (``status.json`` + the pid).

Bookkeeping lives in ``<runs_dir>/.dashboard/`` (a dot folder: :func:`molgfn.training.runs.list_runs` skips it)::

    lock                       flock-ed while the queue is changed or runs are started
    queue.json                 [{"run_id", "submitted", "requires"}, ...] oldest first
    configs/<run_id>.toml      the validated config of a queued or launched run
    launched/<run_id>.json     {"pid", "launched", "argv"} of each process the dashboard started
    launched/<run_id>.log      the process's stdout and stderr (errors before the run folder exists)
    uploads/                   uploaded assay tables (sanitised names)
    proxies/                   proxies trained from the dashboard (``molgfn proxy train``)

**Queue.** At most ``max_concurrent`` runs train at once (runs started elsewhere, e.g. from the CLI,
count too); further submissions wait in ``queue.json``. Nobody runs a scheduler: every dashboard page
view calls :func:`pump_queue`, so a queued run starts when whichever dashboard session next notices a
free slot (within a few seconds while any page with a live view is open). A queued run may *require* a
file (the proxy it trains on): it starts only once that file exists, and fails to start if the process
making it is gone without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import molgfn
from molgfn.config import SAFE_NAME, Config, config_to_toml
from molgfn.dashboard.settings import DEFAULT_MAX_CONCURRENT, safe_file_name, state_dir
from molgfn.errors import MolgfnError
from molgfn.training.runs import RunStore, list_runs, pid_alive, process_start, validate_run_id


# ------------------------------------------------------------------------------------------ bookkeeping
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _locked(runs_dir: Path) -> Iterator[Path]:
    state = state_dir(runs_dir)
    with open(state / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield state
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _alive(entry: dict[str, Any]) -> bool:
    """Whether the process a launch record names is still that process (pid and start time)."""
    return pid_alive(entry.get("pid"), start=entry.get("pid_start"))


def read_queue(runs_dir: str | Path) -> list[dict[str, Any]]:
    """The queued runs, oldest first: ``[{"run_id", "submitted", "requires"}, ...]``."""
    path = Path(runs_dir) / ".dashboard" / "queue.json"
    queue = _read_json(path, [])
    return queue if isinstance(queue, list) else []


def launched(runs_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{run_id: {"pid", "launched", "argv"}}`` of every process the dashboard started."""
    folder = Path(runs_dir) / ".dashboard" / "launched"
    out = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            entry = _read_json(path, None)
            if isinstance(entry, dict):
                out[path.stem] = entry
    return out


def launch_log_path(runs_dir: str | Path, run_id: str) -> Path:
    return Path(runs_dir) / ".dashboard" / "launched" / f"{validate_run_id(run_id)}.log"


# --------------------------------------------------------------------------------------------- launching
def new_run_id(name: str, runs_dir: str | Path) -> str:
    """``<name>-<UTC time>``, made unique against run folders, the queue and launched processes."""
    if not SAFE_NAME.match(name or ""):
        raise MolgfnError(f"run name {name!r}: must use only letters, digits, '_', '.' and '-'")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    taken = _taken_ids(Path(runs_dir))
    run_id, suffix = f"{name}-{stamp}", 1
    while run_id in taken:
        suffix += 1
        run_id = f"{name}-{stamp}-{suffix}"
    return validate_run_id(run_id)


def _taken_ids(runs_dir: Path) -> set[str]:
    taken = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    taken |= {q["run_id"] for q in read_queue(runs_dir)}
    taken |= set(launched(runs_dir))
    return taken


def train_argv(config_path: Path, run_id: str, runs_dir: Path) -> list[str]:
    """The training command of a dashboard run: an argv list for ``subprocess`` (no shell)."""
    return [
        sys.executable,
        "-m",
        "molgfn",
        "train",
        "--config",
        str(config_path),
        "--run-id",
        validate_run_id(run_id),
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
    ]


def resume_argv(run_id: str, runs_dir: Path) -> list[str]:
    """The command resuming a stopped or interrupted run from its last checkpoint (an argv list)."""
    return [
        sys.executable,
        "-m",
        "molgfn",
        "train",
        "--resume",
        validate_run_id(run_id),
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
    ]


def resume_run(
    runs_dir: str | Path, run_id: str, *, max_concurrent: int = DEFAULT_MAX_CONCURRENT
) -> Submitted:
    """Queue the resumption of a stopped or interrupted run (``molgfn train --resume``) and start it
    at once if a slot is free."""
    runs_dir = Path(runs_dir).resolve()
    store = RunStore.open(validate_run_id(run_id), runs_dir)
    status = store.status()["status"]
    if status not in ("stopped", "interrupted"):
        raise MolgfnError(
            f"run {run_id!r}: only a stopped or interrupted run can be resumed (it is {status})"
        )
    if not store.checkpoints():
        raise MolgfnError(f"run {run_id!r}: no checkpoint to resume from")
    with _locked(runs_dir) as state:
        queue = read_queue(runs_dir)
        if any(q["run_id"] == run_id for q in queue):
            raise MolgfnError(f"run {run_id!r}: already queued")
        queue.append({"run_id": run_id, "submitted": _now(), "requires": None, "resume": True})
        _write_json(state / "queue.json", queue)
        started = _pump_locked(runs_dir, state, max_concurrent)
    return Submitted(run_id, "started" if run_id in started else "queued")


def _spawn(argv: list[str], log_path: Path) -> int:
    """Start ``argv`` detached (own session, stdin closed, output to ``log_path``); returns its pid."""
    env = dict(os.environ)
    # the child imports the same molgfn as this process (a worktree or checkout may differ from the
    # installed one)
    package_root = str(Path(molgfn.__file__).resolve().parents[1])  # the folder holding the package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[process.pid] = process
    return process.pid


_CHILDREN: dict[int, subprocess.Popen] = {}  # processes started here, reaped by _reap (no zombies)


def _reap() -> None:
    for pid, process in list(_CHILDREN.items()):
        if process.poll() is not None:
            del _CHILDREN[pid]


@dataclass(frozen=True)
class Submitted:
    run_id: str
    state: str  # "started" or "queued"


def submit_run(
    cfg: Config,
    runs_dir: str | Path,
    *,
    run_id: str | None = None,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    requires: str | Path | None = None,
    requires_pid: int | None = None,
) -> Submitted:
    """Queue a training run of ``cfg`` and start it at once if a slot is free.

    ``requires``: a file (a proxy being trained by process ``requires_pid``) the run waits for."""
    runs_dir = Path(runs_dir).resolve()
    with _locked(runs_dir) as state:
        run_id = validate_run_id(run_id) if run_id else new_run_id(cfg.run.name, runs_dir)
        if run_id in _taken_ids(runs_dir):
            raise MolgfnError(f"run id {run_id!r}: already used in {runs_dir}")
        (state / "configs" / f"{run_id}.toml").write_text(config_to_toml(cfg), encoding="utf-8")
        queue = read_queue(runs_dir)
        queue.append(
            {
                "run_id": run_id,
                "submitted": _now(),
                "requires": str(requires) if requires else None,
                "requires_pid": requires_pid,
                "requires_pid_start": process_start(requires_pid),
            }
        )
        _write_json(state / "queue.json", queue)
        started = _pump_locked(runs_dir, state, max_concurrent)
    return Submitted(run_id, "started" if run_id in started else "queued")


def active_run_ids(runs_dir: str | Path) -> set[str]:
    """Runs training now: status running in the store, or launched here and still starting up."""
    runs_dir = Path(runs_dir)
    active = set()
    frame = list_runs(runs_dir)
    active |= set(frame.loc[frame["status"] == "running", "id"])
    present = set(frame["id"])
    for run_id, entry in launched(runs_dir).items():
        if run_id in present:
            status = RunStore(runs_dir / run_id).status().get("status")
            if status in ("created", "unknown") and _alive(entry):
                active.add(run_id)
        elif _alive(entry):
            active.add(run_id)
    return active


def pump_queue(runs_dir: str | Path, max_concurrent: int = DEFAULT_MAX_CONCURRENT) -> list[str]:
    """Start queued runs while fewer than ``max_concurrent`` train; returns the ids started."""
    runs_dir = Path(runs_dir).resolve()
    _reap()
    if not read_queue(runs_dir):
        return []
    with _locked(runs_dir) as state:
        return _pump_locked(runs_dir, state, max_concurrent)


def _pump_locked(runs_dir: Path, state: Path, max_concurrent: int) -> list[str]:
    queue = read_queue(runs_dir)
    started: list[str] = []
    active = len(active_run_ids(runs_dir))
    remaining = []
    for entry in queue:
        run_id = entry["run_id"]
        requires = entry.get("requires")
        if requires and not Path(requires).is_file():
            if pid_alive(entry.get("requires_pid"), start=entry.get("requires_pid_start")):
                remaining.append(entry)  # still waiting for its proxy
                continue
            _write_json(
                state / "launched" / f"{run_id}.json",
                {
                    "pid": None,
                    "launched": _now(),
                    "argv": [],
                    "error": f"the proxy {requires} was not made:\n{tail(Path(requires).with_suffix('.log'), 15)}",
                },
            )
            continue
        if active >= max_concurrent:
            remaining.append(entry)
            continue
        if entry.get("resume"):
            argv = resume_argv(run_id, runs_dir)
        else:
            argv = train_argv(state / "configs" / f"{run_id}.toml", run_id, runs_dir)
        pid = _spawn(argv, state / "launched" / f"{run_id}.log")
        _write_json(
            state / "launched" / f"{run_id}.json",
            {"pid": pid, "pid_start": process_start(pid), "launched": _now(), "argv": argv},
        )
        started.append(run_id)
        active += 1
    _write_json(state / "queue.json", remaining)
    return started


def cancel_queued(runs_dir: str | Path, run_id: str) -> bool:
    """Remove a queued run; False if it was not queued (already started)."""
    runs_dir = Path(runs_dir).resolve()
    with _locked(runs_dir) as state:
        queue = read_queue(runs_dir)
        kept = [q for q in queue if q["run_id"] != run_id]
        _write_json(state / "queue.json", kept)
        return len(kept) < len(queue)


def start_proxy_training(
    data_path: str | Path, runs_dir: str | Path, *, units: str | None = None, model: str = "fp"
) -> tuple[Path, int]:
    """Train a proxy on an assay table in the background (``molgfn proxy train``); returns the proxy file
    it will write and the pid. Its output goes to ``<proxy>.log``."""
    data_path = Path(data_path).resolve()
    state = state_dir(Path(runs_dir).resolve())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = state / "proxies" / f"{safe_file_name(data_path.stem)}-{stamp}.proxy.pt"
    from molgfn.proxy.train import MODELS

    if model not in MODELS:
        raise MolgfnError(f"proxy model {model!r}: must be one of {', '.join(MODELS)}")
    argv = [sys.executable, "-m", "molgfn", "proxy", "train", str(data_path), "--out", str(out), "--quiet"]
    argv += ["--model", model]
    if units:
        argv += ["--units", units]
    pid = _spawn(argv, out.with_suffix(".log"))
    return out, pid


# ------------------------------------------------------------------------------------------------ listing
def dashboard_runs(runs_dir: str | Path) -> Any:
    """Every run the dashboard knows, newest first: the run store's runs (``list_runs`` columns) plus
    queued runs (status ``queued``), runs still starting (``starting``) and launches that failed before
    their run folder existed (``failed``, with a ``message``)."""
    import pandas as pd

    runs_dir = Path(runs_dir)
    frame = list_runs(runs_dir)
    frame["message"] = frame["message"].where(frame["status"] == "damaged", None)  # keep why it is damaged
    present = set(frame["id"])
    extra = []
    for entry in read_queue(runs_dir):
        if entry.get("resume") and entry["run_id"] in present:
            frame.loc[frame["id"] == entry["run_id"], ["status", "message"]] = ["queued", "queued to resume"]
            continue
        waiting = " (waiting for its proxy)" if entry.get("requires") else ""
        extra.append(
            {
                "id": entry["run_id"],
                "status": "queued",
                "started": entry["submitted"],
                "message": f"queued{waiting}",
            }
        )
    for run_id, entry in launched(runs_dir).items():
        if run_id in present:
            status = RunStore(runs_dir / run_id).status().get("status")
            if status == "created":
                alive = _alive(entry)
                frame.loc[frame["id"] == run_id, "status"] = "starting" if alive else "failed"
                if not alive:
                    frame.loc[frame["id"] == run_id, "message"] = launch_error(runs_dir, run_id)
            continue
        if _alive(entry):
            extra.append(
                {"id": run_id, "status": "starting", "started": entry.get("launched"), "message": None}
            )
        else:
            extra.append(
                {
                    "id": run_id,
                    "status": "failed",
                    "started": entry.get("launched"),
                    "message": entry.get("error") or launch_error(runs_dir, run_id),
                }
            )
    if extra:
        frame = pd.concat([pd.DataFrame(extra), frame], ignore_index=True)
    for col in ("step", "steps", "trajectories"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.sort_values("started", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )


def launch_error(runs_dir: str | Path, run_id: str, lines: int = 20) -> str:
    """The last lines of a launched process's output (why a run failed to start)."""
    text = tail(launch_log_path(runs_dir, run_id), lines)
    return text or "the training process exited before creating its run folder"


def tail(path: str | Path, lines: int = 40, max_bytes: int = 65536) -> str:
    """The last ``lines`` lines of a text file ('' if missing); reads at most ``max_bytes``."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def wait_for_status(store: RunStore, statuses: tuple[str, ...], timeout: float = 60.0) -> str:
    """Poll a run's status until it is one of ``statuses`` (for scripts and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        status = store.status().get("status", "unknown")
        if status in statuses or time.monotonic() > deadline:
            return status
        time.sleep(0.2)
