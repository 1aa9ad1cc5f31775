"""Run management for the dashboard: launching trainings in the background, a queue, progress, forms.

The dashboard never trains in its own process. A launched run is the ordinary CLI,
``python -m molgfn train --config FILE --run-id ID --runs-dir DIR --no-progress``, started as an argv
list (never a shell) in a new session, so it survives page reloads and a restart (or kill) of the
dashboard; its status is read back from the run store (``status.json`` + the pid).

Bookkeeping lives in ``<runs_dir>/.dashboard/`` (a dot folder: :func:`molgfn.runs.list_runs` skips it)::

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
import copy
import fcntl
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from molgfn.config import SAFE_NAME, Config, config_from_dict, config_to_toml, read_toml
from molgfn.errors import MolgfnError
from molgfn.runs import RunStore, list_runs, pid_alive, validate_run_id

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS_DIR = REPO_ROOT / "configs"
TARGETS_DIR = REPO_ROOT / "data" / "targets"
MODELS_DIR = REPO_ROOT / "models"

DEFAULT_MAX_CONCURRENT = 2
DEFAULT_MAX_UPLOAD_MB = 50
ENV_RUNS_DIR = "MOLGFN_RUNS_DIR"
ENV_MAX_CONCURRENT = "MOLGFN_MAX_CONCURRENT"
ENV_MAX_UPLOAD_MB = "MOLGFN_MAX_UPLOAD_MB"
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".sdf")

_OTHER_FIELD = re.compile(r"\b[a-z_]+\.[a-z_]+\b")
_FIELD_IN_MESSAGE = re.compile(r"^[^:]*: ((?:[a-z_]+)(?:\.[a-z_]+|\[\d+\])*): (.*)$", re.S)


# --------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Dashboard settings, from environment variables (``molgfn app`` sets them from its options)."""

    runs_dir: Path
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        runs_dir = Path(env.get(ENV_RUNS_DIR) or "runs").expanduser().resolve()
        return cls(
            runs_dir=runs_dir,
            max_concurrent=_positive_int(
                env.get(ENV_MAX_CONCURRENT), DEFAULT_MAX_CONCURRENT, ENV_MAX_CONCURRENT
            ),
            max_upload_mb=_positive_float(
                env.get(ENV_MAX_UPLOAD_MB), DEFAULT_MAX_UPLOAD_MB, ENV_MAX_UPLOAD_MB
            ),
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _positive_int(text: str | None, default: int, name: str) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise MolgfnError(f"{name}: must be a positive integer (got {text!r})") from None
    if value < 1:
        raise MolgfnError(f"{name}: must be a positive integer (got {text!r})")
    return value


def _positive_float(text: str | None, default: float, name: str) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise MolgfnError(f"{name}: must be a positive number (got {text!r})") from None
    if not math.isfinite(value) or value <= 0:
        raise MolgfnError(f"{name}: must be a positive number (got {text!r})")
    return value


# ------------------------------------------------------------------------------------------ bookkeeping
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _state_dir(runs_dir: Path) -> Path:
    path = Path(runs_dir) / ".dashboard"
    for sub in ("configs", "launched", "uploads", "proxies"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(runs_dir: Path) -> Iterator[Path]:
    state = _state_dir(runs_dir)
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
    package_root = str(Path(__file__).resolve().parents[1])
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
            if status in ("created", "unknown") and pid_alive(entry.get("pid")):
                active.add(run_id)
        elif pid_alive(entry.get("pid")):
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
            if pid_alive(entry.get("requires_pid")):
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
        _write_json(state / "launched" / f"{run_id}.json", {"pid": pid, "launched": _now(), "argv": argv})
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
    state = _state_dir(Path(runs_dir).resolve())
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
    frame["message"] = None
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
                alive = pid_alive(entry.get("pid"))
                frame.loc[frame["id"] == run_id, "status"] = "starting" if alive else "failed"
                if not alive:
                    frame.loc[frame["id"] == run_id, "message"] = launch_error(runs_dir, run_id)
            continue
        if pid_alive(entry.get("pid")):
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


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    trajectories: int
    traj_per_s: float | None
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.steps) if self.steps else 0.0


def run_progress(store: RunStore, window: int = 20) -> Progress:
    """Step, total steps, trajectories, trajectories/s (mean of the last ``window`` steps) and the ETA."""
    status = store.status()
    try:
        steps = int(store.config().train.steps)
    except MolgfnError:
        steps = int(status.get("steps") or 0)
    try:
        summary = store.summary()
        recent = store.read_steps(
            ["wall", "trajectories"], since_step=max(0, int(summary["step"] or 0) - window)
        )
    except (MolgfnError, Exception):  # noqa: BLE001 - a run folder being created has no database yet
        return Progress(0, steps, 0, None, None)
    step = int(summary["step"] or 0)
    traj = int(summary["trajectories"] or 0)
    rate = eta = None
    if len(recent) >= 2:
        dt = float(recent["wall"].iloc[-1] - recent["wall"].iloc[0])
        dn = float(recent["trajectories"].iloc[-1] - recent["trajectories"].iloc[0])
        dsteps = float(recent["step"].iloc[-1] - recent["step"].iloc[0])
        if dt > 0:
            rate = dn / dt
            eta = max(0.0, (steps - step) * dt / dsteps) if dsteps > 0 else None
    elif len(recent) == 1 and recent["wall"].iloc[0] > 0:
        rate = float(recent["trajectories"].iloc[0] / recent["wall"].iloc[0])
        eta = max(0.0, (steps - step) * float(recent["wall"].iloc[0]) / max(step, 1))
    return Progress(step, steps, traj, rate, eta)


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# ------------------------------------------------------------------------------------------------ the form
def config_template(name: str = "tiny") -> dict[str, Any]:
    """A shipped config (``configs/<name>.toml``) as a dict, the starting point of the Train form."""
    if not re.match(r"^[a-z_]+$", name):
        raise MolgfnError(f"config template {name!r}: unknown")
    return read_toml(CONFIGS_DIR / f"{name}.toml")


def set_field(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_field(data, "train.batch_size", 8)`` sets ``data["train"]["batch_size"]``."""
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def field_of_error(message: str) -> tuple[str | None, str]:
    """Split a config error ``"source: train.batch_size: must be >= 1 (got 0)"`` into its field and text."""
    match = _FIELD_IN_MESSAGE.match(message)
    if not match:
        return None, message
    return match.group(1), match.group(2)


def validate_form(
    data: Mapping[str, Any], fields: Mapping[str, Any], *, check_files: bool = True
) -> tuple[Config | None, dict[str, str]]:
    """Validate a form: ``data`` is the whole config document, ``fields`` the dotted form fields in it.

    Each field is first checked on its own (so every wrong field gets its message, not just the first),
    then the whole config (cross-field rules such as beta_min <= beta_max, files, the reward). Returns the
    config (None if invalid) and ``{field: message}`` (key ``""`` for a message naming no form field)."""
    errors: dict[str, str] = {}
    for dotted, value in fields.items():
        single: dict[str, Any] = {}
        if dotted.startswith("reward."):
            continue  # reward fields are only meaningful in their component; checked below
        set_field(single, dotted, value)
        try:
            config_from_dict(single, source="form", check_files=False)
        except MolgfnError as exc:
            named, text = field_of_error(str(exc))
            # a rule between fields (beta_min <= beta_max) compares with defaults here: the whole
            # config below decides it
            if named == dotted and not _OTHER_FIELD.search(text):
                errors[dotted] = text
    if errors:
        # rules between fields still get their say: check the rest with the wrong fields left out
        rest = copy.deepcopy(dict(data))
        for dotted in errors:
            section, _, key = dotted.partition(".")
            rest.get(section, {}).pop(key, None)
        try:
            config_from_dict(rest, source="form", check_files=False)
        except MolgfnError as exc:
            dotted, text = field_of_error(str(exc))
            key = dotted if dotted in fields else _closest_field(dotted, fields)
            errors.setdefault(key, text if key else str(exc))
        return None, errors
    try:
        cfg = config_from_dict(data, source="form", base_dir=REPO_ROOT, check_files=check_files)
    except MolgfnError as exc:
        dotted, text = field_of_error(str(exc))
        key = dotted if dotted in fields else _closest_field(dotted, fields)
        return None, {key: text if key else str(exc)}
    return cfg, {}


def _closest_field(dotted: str | None, fields: Mapping[str, Any]) -> str:
    if not dotted:
        return ""
    for name in fields:  # reward.components[2].weight -> the form field of component 2's weight
        if name.startswith(dotted) or dotted.startswith(name):
            return name
    return ""


def reward_components(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    components = data.get("reward", {}).get("components", [])
    return [c for c in components if isinstance(c, dict)]


def component_name(component: Mapping[str, Any]) -> str:
    return str(component.get("name") or component.get("kind"))


# ------------------------------------------------------------------------------------------------ uploads
def safe_file_name(name: str, max_length: int = 80) -> str:
    """A file name safe to create inside a folder: the base name only, characters outside
    ``[A-Za-z0-9_.-]`` replaced by ``_``, no leading dots, not empty."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base).lstrip(".")
    base = base[-max_length:] if len(base) > max_length else base
    return base or "upload"


def save_upload(name: str, data: bytes, runs_dir: str | Path, max_bytes: int) -> Path:
    """Store an uploaded assay table under ``<runs_dir>/.dashboard/uploads/`` with a sanitised name;
    refuses (MolgfnError) files over ``max_bytes`` or with another extension than csv/tsv/txt/sdf."""
    if len(data) > max_bytes:
        raise MolgfnError(
            f"{safe_file_name(name)}: {len(data) / 1e6:.1f} MB is over the upload limit of {max_bytes / 1e6:.1f} MB"
        )
    safe = safe_file_name(name)
    if Path(safe).suffix.lower() not in UPLOAD_SUFFIXES:
        raise MolgfnError(f"{safe}: must be a table ({', '.join(UPLOAD_SUFFIXES)})")
    folder = (_state_dir(Path(runs_dir).resolve()) / "uploads").resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = (folder / f"{stamp}-{safe}").resolve()
    if path.parent != folder:  # cannot happen after safe_file_name; belt and braces
        raise MolgfnError(f"{name}: bad file name")
    path.write_bytes(data)
    return path


def list_targets() -> list[Path]:
    """The assay tables shipped in ``data/targets``."""
    return sorted(TARGETS_DIR.glob("*.csv"))


def list_proxies(runs_dir: str | Path) -> list[Path]:
    """Proxy files: shipped under ``models/`` and trained from the dashboard."""
    found = sorted(MODELS_DIR.glob("*.pt")) if MODELS_DIR.is_dir() else []
    folder = Path(runs_dir) / ".dashboard" / "proxies"
    if folder.is_dir():
        found += sorted(folder.glob("*.pt"))
    return found


def run_proxy_path(store: RunStore) -> Path | None:
    """The proxy file of a run's reward, if it has one."""
    try:
        cfg = store.config()
    except MolgfnError:
        return None
    for component in reward_components(cfg.to_dict()):
        if component.get("kind") == "proxy" and component.get("path"):
            return Path(component["path"])
    return None


def wait_for_status(store: RunStore, statuses: tuple[str, ...], timeout: float = 60.0) -> str:
    """Poll a run's status until it is one of ``statuses`` (for scripts and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        status = store.status().get("status", "unknown")
        if status in statuses or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------------- export
EXPORT_FORMATS = {"csv": "text/csv", "sdf": "chemical/x-mdl-sdfile", "smi": "chemical/x-daylight-smiles"}


def export_bytes(table: Any, fmt: str) -> bytes:
    """A molecule table written by the export writers (:func:`molgfn.export.write_molecules`) in
    ``fmt`` (csv, sdf or smi), as bytes for a download button."""
    import tempfile

    from molgfn.export import write_molecules

    if fmt not in EXPORT_FORMATS:
        raise MolgfnError(f"export format {fmt!r}: must be one of {', '.join(EXPORT_FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="molgfn-export-") as folder:
        path = Path(folder) / f"molecules.{fmt}"
        write_molecules(table, path, force=True)
        return path.read_bytes()


def generator_sources(runs_dir: str | Path) -> list[str]:
    """What the Generate page can sample from: the shipped generator (if present), then every run with a
    checkpoint (finished or stopped first), as ids."""
    sources = []
    try:
        from molgfn.generate import DEFAULT_GENERATOR

        if Path(DEFAULT_GENERATOR).exists():
            sources.append("shipped")
    except ImportError:
        pass
    frame = list_runs(runs_dir)
    for row in frame.itertuples():
        if (
            row.status in ("finished", "stopped", "interrupted", "running")
            and RunStore(Path(row.path)).checkpoints()
        ):
            sources.append(row.id)
    return sources
