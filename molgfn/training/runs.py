"""The run store: one folder per run, read by the CLI and the dashboard while the trainer writes it.

    runs/<run-id>/
        config.toml        the full validated config (every field), the run's single source of truth
        metrics.sqlite     SQLite in WAL mode: tables steps, molecules, meta (below)
        checkpoints/       step_00000100.pt ... (the last two), written atomically
        train.log          human-readable log: metric summaries, warnings, a failure's traceback
        status.json        {"status": running|finished|failed|stopped|interrupted, "pid", "step", ...}

SQLite schema (one row per training step; one row per sampled terminal molecule)::

    steps(step INTEGER PRIMARY KEY, trajectories INTEGER, wall REAL, time REAL, <metric> REAL, ...)
    molecules(id INTEGER PRIMARY KEY, step INTEGER, smiles TEXT, reward REAL, components TEXT)
    properties(smiles TEXT PRIMARY KEY, data TEXT)
    meta(key TEXT PRIMARY KEY, value TEXT)

``steps`` is wide: each metric is its own REAL column, added the first time it is written, so a reader
plots any metric against ``trajectories`` (cumulative trajectories sampled) or ``wall`` (cumulative
training seconds) with ``SELECT trajectories, loss FROM steps``. ``molecules.components`` is a JSON object
``{component name: transformed value}``; :meth:`RunStore.read_molecules` expands it into columns.
``properties`` holds each distinct molecule's properties once (QED, SA, MW, logP, TPSA, HBD, HBA, alerts; a
JSON object), computed while scoring, so that the dashboard filters on them without computing them again
(:meth:`RunStore.read_properties`; runs made before it have none).
A step's metrics and molecules are written in one transaction, so a killed writer never leaves half a
step; readers in other processes see whole steps only (WAL: readers never block the writer).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molgfn.config import SAFE_NAME, Config, config_to_toml, load_config
from molgfn.errors import MolgfnError

if TYPE_CHECKING:
    import pandas as pd

STATUSES = ("running", "finished", "failed", "stopped", "interrupted")
_FIXED_STEP_COLUMNS = ("step", "trajectories", "wall", "time")
_MOLECULE_COLUMNS = ("id", "step", "smiles", "reward")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    step INTEGER PRIMARY KEY,
    trajectories INTEGER NOT NULL,
    wall REAL NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS molecules (
    id INTEGER PRIMARY KEY,
    step INTEGER NOT NULL,
    smiles TEXT NOT NULL,
    reward REAL,
    components TEXT
);
CREATE INDEX IF NOT EXISTS molecules_step ON molecules(step);
CREATE INDEX IF NOT EXISTS molecules_reward ON molecules(reward);
CREATE TABLE IF NOT EXISTS properties (smiles TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def validate_run_id(run_id: str) -> str:
    """A run id is a plain folder name: letters, digits, ``_``, ``.`` and ``-``; not ``.`` or ``..``."""
    if not isinstance(run_id, str) or not SAFE_NAME.match(run_id) or set(run_id) == {"."}:
        raise MolgfnError(
            f"run id {run_id!r}: must use only letters, digits, '_', '.' and '-' (and not be '.' or '..')"
        )
    return run_id


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _atomic_write_text(path: Path, text: str, *, in_place_fallback: bool = False) -> None:
    """Write ``text`` to a temporary file, fsync, rename over ``path``; the temporary file never stays.
    With ``in_place_fallback``, a full disk (no room for the temporary file) overwrites ``path`` in place
    instead: a small file's blocks are already allocated, so a status can still say why a run failed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if not (
            in_place_fallback and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and path.exists()
        ):
            raise
        with open(path, "r+", encoding="utf-8") as fh:
            fh.write(text)
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())


def process_start(pid: int | None) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot, /proc/PID/stat field 22), or None where
    it cannot be read (no such process, not Linux). With the pid it names one process: a pid reused by a
    later process has a later start time."""
    if not pid:
        return None
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int | None, host: str | None = None, start: int | None = None) -> bool:
    """Whether process ``pid`` exists (on this host; a run started elsewhere is assumed alive) and, when
    ``start`` is given, is the very process that recorded it (same start time: not a reused pid)."""
    if host is not None and host != socket.gethostname():
        return True
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # a zombie (exited, not yet reaped by its parent) counts as dead
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True  # no /proc (not Linux): the pid exists
    if fields[0] == "Z":
        return False
    return start is None or int(fields[19]) == int(start)


def _damaged(path: Path, exc: BaseException) -> MolgfnError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return MolgfnError(f"{path}: damaged or unreadable ({reason})")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)  # autocommit; explicit BEGIN
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _connect_reader(path: Path) -> sqlite3.Connection:
    """A reader's connection; in a folder this process cannot write (a read-only mount, another user's
    runs) SQLite cannot make the WAL index, so the file is opened immutable: nobody can be writing it."""
    conn = _connect(path)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(path.parent, os.W_OK) and not _read_only_mount(path):
            raise
    uri = f"{path.resolve().as_uri()}?immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def open_writer(path: Path, schema: str) -> sqlite3.Connection:
    """A writer's connection to a store: autocommit (explicit BEGIN), WAL, synchronous=NORMAL (a crash
    loses no committed transaction; a power cut at most the last ones), with ``schema`` applied."""
    conn = _connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(schema)
    return conn


def pd_errors() -> type[BaseException]:
    """pandas wraps a reader's SQLite errors in its DatabaseError."""
    from pandas.errors import DatabaseError

    return DatabaseError


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class RunStore:
    """One run folder. Create with :meth:`create`, open an existing one with :meth:`open`.

    Writer methods (:meth:`write_step`, :meth:`truncate_after`, :meth:`set_status`) are used by the one
    trainer process; reader methods (:meth:`read_steps`, :meth:`read_molecules`, :meth:`status`) open
    their own short connection and are safe from any process while training runs."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._conn: sqlite3.Connection | None = None
        self._metric_columns: set[str] | None = None

    # ---------------------------------------------------------------------------------------- locations
    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def db_path(self) -> Path:
        return self.path / "metrics.sqlite"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    # ------------------------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, cfg: Config, run_id: str | None = None, runs_dir: str | Path | None = None) -> RunStore:
        """Make ``<runs_dir>/<run_id>/`` (default id ``<run.name>-<UTC time>``) holding the config."""
        runs_dir = Path(runs_dir if runs_dir is not None else cfg.run.runs_dir)
        if run_id is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            run_id = f"{cfg.run.name}-{stamp}"
            suffix = 1
            while (runs_dir / run_id).exists():
                suffix += 1
                run_id = f"{cfg.run.name}-{stamp}-{suffix}"
        validate_run_id(run_id)
        path = runs_dir / run_id
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise MolgfnError(f"run {run_id!r}: {path} exists (resume it with --resume {run_id})") from None
        except OSError as exc:
            raise MolgfnError(f"run.runs_dir: cannot create {path} ({exc})") from None
        store = cls(path)
        try:
            (path / "checkpoints").mkdir()
            meta = {"created": _now()}
            if cfg.base_dir is not None:
                meta["config_dir"] = str(cfg.base_dir)
            store._init_db(meta)
            store.write_config(cfg)  # a folder is listed as a run once its config is there
            _atomic_write_text(store.status_path, json.dumps({"status": "created", "created": _now()}))
        except (OSError, sqlite3.Error) as exc:
            store.close()
            shutil.rmtree(path, ignore_errors=True)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise MolgfnError(
                f"run.runs_dir: cannot create the run in {path} ({reason}); nothing kept"
            ) from None
        return store

    @classmethod
    def open(cls, path_or_id: str | Path, runs_dir: str | Path = "runs") -> RunStore:
        """An existing run, by folder path or by id under ``runs_dir``; missing -> MolgfnError naming it."""
        candidate = Path(path_or_id)
        if candidate.is_dir() and (candidate / "config.toml").is_file():
            return cls(candidate)
        if len(candidate.parts) > 1 or candidate.is_absolute():  # a path, not an id
            if candidate.is_dir():
                raise MolgfnError(f"{candidate}: not a run folder (no config.toml)")
            raise MolgfnError(f"{candidate}: run folder not found")
        run_id = validate_run_id(str(path_or_id))
        path = Path(runs_dir) / run_id
        if not (path / "config.toml").is_file():
            raise MolgfnError(f"run {run_id!r}: not found in {runs_dir} (no {path / 'config.toml'})")
        return cls(path)

    def write_config(self, cfg: Config) -> None:
        _atomic_write_text(self.config_path, config_to_toml(cfg))

    def config(self, *, check_files: bool = False) -> Config:
        """The run's config (paths in it are absolute; files are checked only if asked)."""
        cfg = load_config(self.config_path, check_files=False)
        config_dir = self.meta().get("config_dir")
        if config_dir:  # command plugins run in the original config's folder
            from dataclasses import replace

            cfg = replace(cfg, base_dir=Path(config_dir))
        if check_files:
            from molgfn.config import check_config_files

            check_config_files(cfg, source=str(self.config_path))
        return cfg

    # ---------------------------------------------------------------------------------------- database
    def _init_db(self, meta: Mapping[str, str]) -> None:
        """Make metrics.sqlite whole or not at all: schema and ``meta`` go into a temporary database that
        is closed (its WAL folded in) and renamed into place, so a reader never sees a half-made one."""
        tmp = self.db_path.with_name(f".{self.db_path.name}.{os.getpid()}.tmp")
        try:
            conn = open_writer(tmp, _SCHEMA)
            try:
                conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())
            finally:
                conn.close()
            os.replace(tmp, self.db_path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                leftover.unlink(missing_ok=True)

    def connection(self) -> sqlite3.Connection:
        """The writer's connection (WAL, synchronous=NORMAL), opened once. A database that cannot be
        opened for writing (read-only folder, damaged file) is a MolgfnError naming it."""
        if self._conn is None:
            if not self.db_path.is_file():
                raise MolgfnError(f"run {self.id!r}: no metrics database ({self.db_path})")
            try:
                conn = open_writer(self.db_path, _SCHEMA)
                conn.execute("BEGIN IMMEDIATE")  # can we write here at all? fail now, not mid-step
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise MolgfnError(f"{self.db_path}: cannot open for writing ({exc})") from None
            self._conn = conn
        return self._conn

    def check_writable(self) -> None:
        """Fail now, with one line, if the run folder or its database cannot be written (a read-only
        folder or mount), rather than at the first write of a resumed training."""
        import tempfile

        try:
            with tempfile.NamedTemporaryFile(dir=self.path, prefix=".write-check.", suffix=".tmp"):
                pass
        except OSError as exc:
            raise MolgfnError(f"run {self.id}: cannot write in {self.path} ({exc.strerror or exc})") from None
        self.connection()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _columns(self, conn: sqlite3.Connection, table: str) -> list[str]:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]

    def write_step(
        self,
        step: int,
        trajectories: int,
        wall: float,
        metrics: Mapping[str, float],
        smiles: Sequence[str] = (),
        reward: Sequence[float] | np.ndarray = (),
        components: Mapping[str, Sequence[float] | np.ndarray] | None = None,
        properties: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    ) -> None:
        """Record one step: its metrics row, its molecules and the properties of molecules not recorded
        before (``properties``: name -> one value per molecule), in one transaction."""
        conn = self.connection()
        if self._metric_columns is None:
            self._metric_columns = set(self._columns(conn, "steps"))
        names = [k for k in metrics if k not in _FIXED_STEP_COLUMNS]
        values = [_to_float(metrics[k]) for k in names]
        reward = np.asarray(reward, dtype=float).reshape(-1)
        if len(reward) != len(smiles):
            raise ValueError(f"step {step}: {len(smiles)} smiles but {len(reward)} rewards")
        components = components or {}
        comp_arrays = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in components.items()}
        for k, v in comp_arrays.items():
            if len(v) != len(smiles):
                raise ValueError(f"step {step}: component {k!r} has {len(v)} values for {len(smiles)} smiles")
        rows = [
            (
                step,
                s,
                _to_float(r),
                json.dumps({k: _to_float(v[i]) for k, v in comp_arrays.items()}, allow_nan=False)
                if comp_arrays
                else None,
            )
            for i, (s, r) in enumerate(zip(smiles, reward))
        ]
        prop_arrays = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in (properties or {}).items()}
        for k, v in prop_arrays.items():
            if len(v) != len(smiles):
                raise ValueError(f"step {step}: property {k!r} has {len(v)} values for {len(smiles)} smiles")
        first = {s: i for i, s in reversed(list(enumerate(smiles)))} if prop_arrays else {}  # one per SMILES
        prop_rows = [
            (s, json.dumps({k: _to_float(v[i]) for k, v in prop_arrays.items()}, allow_nan=False))
            for s, i in first.items()
        ]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name in names:
                if name not in self._metric_columns:
                    conn.execute(f"ALTER TABLE steps ADD COLUMN {_quote(name)} REAL")
                    self._metric_columns.add(name)
            columns = ", ".join(_quote(c) for c in (*_FIXED_STEP_COLUMNS, *names))
            marks = ", ".join("?" * (len(_FIXED_STEP_COLUMNS) + len(names)))
            conn.execute(
                f"INSERT INTO steps ({columns}) VALUES ({marks})",
                (int(step), int(trajectories), float(wall), time.time(), *values),
            )
            conn.executemany(
                "INSERT INTO molecules (step, smiles, reward, components) VALUES (?, ?, ?, ?)", rows
            )
            if prop_rows:
                conn.executemany("INSERT OR IGNORE INTO properties (smiles, data) VALUES (?, ?)", prop_rows)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            self._metric_columns = None  # a rolled-back ALTER TABLE: re-read the columns next time
            raise

    def truncate_after(self, step: int) -> int:
        """Delete every step and molecule row with step > ``step`` (before resuming from a checkpoint at
        ``step``); returns the number of step rows removed."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            removed = conn.execute("DELETE FROM steps WHERE step > ?", (int(step),)).rowcount
            conn.execute("DELETE FROM molecules WHERE step > ?", (int(step),))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return removed

    def set_meta(self, key: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            self.connection().execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))
        except sqlite3.Error as exc:
            raise MolgfnError(f"{self.db_path}: cannot write ({exc})") from None

    # ----------------------------------------------------------------------------------------- readers
    def _reader(self) -> sqlite3.Connection:
        if not self.db_path.is_file():
            raise MolgfnError(f"run {self.id!r}: no metrics database ({self.db_path})")
        try:
            return _connect_reader(self.db_path)
        except sqlite3.Error as exc:
            raise _damaged(self.db_path, exc) from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A short reader connection; any SQLite error reading it (a garbled file) is a MolgfnError
        naming the database, so one damaged run never breaks a listing of the others."""
        conn = self._reader()
        try:
            yield conn
        except (sqlite3.Error, pd_errors()) as exc:
            raise _damaged(self.db_path, exc) from None
        finally:
            conn.close()

    def meta(self) -> dict[str, str]:
        if not self.db_path.is_file():
            return {}
        with self._reading() as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def read_steps(self, columns: Sequence[str] | None = None, since_step: int | None = None) -> pd.DataFrame:
        """The steps table (all metric columns, or ``columns``), ordered by step; from ``since_step`` on
        (exclusive) if given, for incremental polling."""
        import pandas as pd

        with self._reading() as conn:
            select = "*" if columns is None else ", ".join(_quote(c) for c in ("step", *columns) if c)
            where, params = ("WHERE step > ?", (int(since_step),)) if since_step is not None else ("", ())
            return pd.read_sql_query(f"SELECT {select} FROM steps {where} ORDER BY step", conn, params=params)

    def oracle_counts(self) -> tuple[int, int] | None:
        """Expensive-oracle calls of the run so far: (paid, taken from the cache), summed over the steps'
        ``<component>_calls`` and ``<component>_cached`` columns; None when the reward has no such component."""
        with self._reading() as conn:
            columns = self._columns(conn, "steps")
            calls = [c for c in columns if c.endswith("_calls")]
            cached = [c for c in columns if c.endswith("_cached")]
            if not calls and not cached:
                return None
            sums = [f"COALESCE(SUM({_quote(c)}), 0)" for c in (*calls, *cached)]
            row = conn.execute(f"SELECT {', '.join(sums)} FROM steps").fetchone()
        values = [int(v) for v in row]
        return sum(values[: len(calls)]), sum(values[len(calls) :])

    def read_molecules(
        self,
        *,
        min_step: int | None = None,
        max_step: int | None = None,
        top: int | None = None,
        unique: bool = False,
        expand_components: bool = True,
    ) -> pd.DataFrame:
        """Sampled molecules: columns step, smiles, reward and one column per reward component.

        ``top``: the ``top`` highest rewards only; ``unique``: one row per SMILES (its first sample)."""
        import pandas as pd

        clauses, params = [], []
        if min_step is not None:
            clauses.append("step >= ?")
            params.append(int(min_step))
        if max_step is not None:
            clauses.append("step <= ?")
            params.append(int(max_step))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        table = f"(SELECT * FROM molecules {where})"
        if unique:
            table = f"(SELECT * FROM molecules WHERE id IN (SELECT MIN(id) FROM {table} GROUP BY smiles))"
        query = f"SELECT step, smiles, reward, components FROM {table}"
        query += " ORDER BY reward DESC, id" if top is not None else " ORDER BY id"
        if top is not None:
            query += f" LIMIT {int(top)}"
        with self._reading() as conn:
            frame = pd.read_sql_query(query, conn, params=params)
        if expand_components:
            parsed = [json.loads(c) if c else {} for c in frame.pop("components")]
            comps = (
                pd.DataFrame.from_records(parsed, index=frame.index)
                if parsed
                else pd.DataFrame(index=frame.index)
            )
            comps.columns = [c if c not in frame.columns else f"component_{c}" for c in comps.columns]
            frame = pd.concat([frame, comps], axis=1)
        return frame

    def read_properties(self) -> pd.DataFrame:
        """The recorded properties, one row per distinct molecule: smiles and one column per property
        (NaN where undefined); no rows for a run that recorded none."""
        import pandas as pd

        with self._reading() as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'properties'").fetchone():
                return pd.DataFrame({"smiles": []})  # a run made before properties were recorded
            frame = pd.read_sql_query("SELECT smiles, data FROM properties", conn)
        values = pd.DataFrame.from_records([json.loads(d) for d in frame.pop("data")], index=frame.index)
        return pd.concat([frame, values.astype(float)], axis=1)

    def summary(self) -> dict[str, Any]:
        """Last step, trajectories and best reward, from the database (cheap aggregate queries)."""
        if not self.db_path.is_file():
            return {"step": 0, "trajectories": 0, "best_reward": None}
        with self._reading() as conn:
            step, traj = conn.execute(
                "SELECT step, trajectories FROM steps ORDER BY step DESC LIMIT 1"
            ).fetchone() or (0, 0)
            (best,) = conn.execute("SELECT MAX(reward) FROM molecules").fetchone()
        return {"step": step, "trajectories": traj, "best_reward": best}

    # ------------------------------------------------------------------------------------------- status
    def set_status(self, status: str, **fields: Any) -> dict[str, Any]:
        """Update status.json (atomically; on a full disk in place), keeping earlier fields; adds the
        writer's identity (pid, its start time, host) and the updated time."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        current = self._read_status_file()
        current.update(fields)
        current.update(status=status, updated=_now())
        current.setdefault("pid", os.getpid())
        current.setdefault("host", socket.gethostname())
        if "pid" in fields or "pid_start" not in current:
            current["pid_start"] = process_start(current.get("pid"))
        _atomic_write_text(self.status_path, json.dumps(current, indent=1), in_place_fallback=True)
        return current

    def _read_status_file(self) -> dict[str, Any]:
        try:
            value = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def status(self) -> dict[str, Any]:
        """status.json, with ``status`` = ``interrupted`` when it says running but its process is gone
        (no such pid, or a pid now held by another process: its start time differs from the recorded one)."""
        current = self._read_status_file()
        if current.get("status") == "running" and not self.owner_alive(current):
            current["status"] = "interrupted"
            current.setdefault("message", "the training process died (resume with molgfn train --resume)")
        current.setdefault("status", "unknown")
        return current

    @staticmethod
    def owner_alive(current: Mapping[str, Any]) -> bool:
        """Whether the process a status names is alive and is that process (pid, start time and host)."""
        start = current.get("pid_start")
        if start is None and current.get("host") in (None, socket.gethostname()):
            return False  # no identity recorded with the pid: it cannot be told from a reused one
        return pid_alive(current.get("pid"), current.get("host"), start)

    def request_stop(self) -> int:
        """Ask a running training process to stop (SIGTERM: it finishes its step, checkpoints, exits as
        ``stopped``); returns its pid. For the dashboard and scripts; the run must be running here, and
        the signal goes only to the process whose identity (pid and start time) status.json records."""
        import signal

        current = self.status()
        if current["status"] != "running":
            raise MolgfnError(f"run {self.id!r}: not running (status {current['status']})")
        if current.get("host") not in (None, socket.gethostname()):
            raise MolgfnError(f"run {self.id!r}: runs on host {current['host']}, not this one")
        pid = int(current["pid"])
        if process_start(pid) != current.get("pid_start"):  # checked again right before the signal
            raise MolgfnError(f"run {self.id!r}: its training process has exited; nothing to stop")
        os.kill(pid, signal.SIGTERM)
        return pid

    # -------------------------------------------------------------------------------------- checkpoints
    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints as (step, path), oldest first."""
        found = []
        for path in self.checkpoints_dir.glob("step_*.pt"):
            try:
                found.append((int(path.stem.split("_", 1)[1]), path))
            except ValueError:
                continue
        return sorted(found)

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"step_{step:08d}.pt"


def _rollback(conn: sqlite3.Connection) -> None:
    """ROLLBACK if a transaction is still open: SQLite ends one itself on some errors (a full disk), and
    a failing ROLLBACK must not hide the error that caused it."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _to_float(value: Any) -> float | None:
    """A metric or reward as a float for SQLite; NaN and infinities are stored as NULL."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def list_runs(runs_dir: str | Path = "runs") -> pd.DataFrame:
    """One row per run folder: id, status, step, steps, trajectories, best_reward, started, updated,
    objective, path, message; newest first. A run whose status says running but whose process is dead
    shows ``interrupted``; one whose database or config cannot be read shows ``damaged``, with the reason
    in ``message`` (the other runs are listed as usual)."""
    import pandas as pd

    runs_dir = Path(runs_dir)
    rows = []
    if runs_dir.is_dir():
        for path in sorted(runs_dir.iterdir()):
            if not (path / "config.toml").is_file():
                continue
            store = RunStore(path)
            status = store.status()
            problem = None
            try:
                cfg = load_config(store.config_path, check_files=False)
                steps, objective = cfg.train.steps, cfg.objective.name
            except MolgfnError as exc:
                steps, objective, problem = None, None, str(exc)
            try:
                summary = store.summary()
            except MolgfnError as exc:
                summary = {"step": None, "trajectories": None, "best_reward": None}
                problem = str(exc)
            rows.append(
                {
                    "id": path.name,
                    "status": "damaged" if problem else status.get("status"),
                    "step": summary["step"],
                    "steps": steps,
                    "trajectories": summary["trajectories"],
                    "best_reward": summary["best_reward"],
                    "objective": objective,
                    "started": status.get("started", status.get("created")),
                    "updated": status.get("updated"),
                    "path": str(path),
                    "message": problem or status.get("message"),
                }
            )
    columns = [
        "id",
        "status",
        "step",
        "steps",
        "trajectories",
        "best_reward",
        "objective",
        "started",
        "updated",
        "path",
        "message",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("started", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )
