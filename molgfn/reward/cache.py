"""The persistent oracle cache: raw values of expensive components (docking, plugins marked
``expensive = true``), so that no molecule is ever paid for twice.

One SQLite file (WAL, so readers never block the writer and several processes can write) holds every
value computed, keyed by the component's parameters (a hash of them, :func:`oracle_key`) and the
molecule's canonical SMILES. Steps, runs, ``molgfn reward score`` and campaigns share it. A value once
stored is never recomputed or overwritten, failures included (a molecule that could not be docked stays
NaN, with its reason). A molecule another process is computing right now is *claimed* by it: the others
wait for its value instead of paying for it too, and take the claim over if that process died.

The file is ``[reward] oracle_cache = PATH`` or, by default, ``$MOLGFN_ORACLE_CACHE`` or
``~/.cache/molgfn/oracle.sqlite``. ``molgfn cache info`` and ``molgfn cache clear`` inspect and empty it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from molgfn.chem.molecules import MolBatch
from molgfn.errors import MolgfnError

ENV_CACHE = "MOLGFN_ORACLE_CACHE"
SCHEMA = """
CREATE TABLE IF NOT EXISTS oracles (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS oracle_values (
    key TEXT NOT NULL,
    smiles TEXT NOT NULL,
    value REAL,
    error TEXT,
    pose TEXT,
    state TEXT NOT NULL,          -- 'pending' while a process computes it, then 'done'
    owner INTEGER,                -- pid of the process computing a pending value
    seconds REAL,
    created REAL NOT NULL,
    PRIMARY KEY (key, smiles)
);
"""


def default_cache_path() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "molgfn" / "oracle.sqlite"


def oracle_key(params: Mapping[str, Any]) -> str:
    """A stable key of an oracle's parameters (everything its values depend on)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _alive(pid: int | str | None) -> bool:
    """Whether the process that claimed a molecule still runs. A remote owner (a Ray actor,
    ``ray:<actor>@<driver pid>``) is alive until its pool says otherwise (:meth:`OracleCache.release_owner`)
    and while the driver that started it runs on this machine (the cache server's)."""
    if not pid:
        return False
    if isinstance(pid, str) and not pid.isdigit():
        driver = pid.rpartition("@")[2]
        return _alive(int(driver)) if driver.isdigit() else True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Computed:
    """What an oracle returns for some molecules: raw values (NaN on failure), reasons, optional poses."""

    values: np.ndarray
    errors: list[str | None]
    poses: list[str | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


class OracleCache:
    """The cache file. Cheap to create; connections are opened per process (safe across fork)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "_conn": None, "_pid": None}

    def connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA busy_timeout=60000")
                conn.executescript(SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise MolgfnError(f"{self.path}: cannot open the oracle cache ({exc})") from None
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def register(self, key: str, kind: str, params: Mapping[str, Any]) -> None:
        self.connection().execute(
            "INSERT OR IGNORE INTO oracles (key, kind, params, created) VALUES (?, ?, ?, ?)",
            (key, kind, json.dumps(params, sort_keys=True, default=str), time.time()),
        )

    def lookup(self, key: str, smiles: Sequence[str]) -> dict[str, tuple[float, str | None]]:
        """The finished values among ``smiles``: {smiles: (value or NaN, error)}."""
        out: dict[str, tuple[float, str | None]] = {}
        conn = self.connection()
        for start in range(0, len(smiles), 500):
            chunk = list(smiles[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT smiles, value, error FROM oracle_values WHERE key = ? AND state = 'done' "
                f"AND smiles IN ({marks})",
                [key, *chunk],
            )
            for smi, value, error in rows:
                out[smi] = (math.nan if value is None else float(value), error)
        return out

    def claim(self, key: str, smiles: Sequence[str], owner: str | None = None) -> list[str]:
        """Claim the molecules no process has computed or is computing; returns those now ours.
        ``owner``: who computes them (default: this process)."""
        conn, pid, now = self.connection(), owner or os.getpid(), time.time()
        mine = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for smi in smiles:
                row = conn.execute(
                    "SELECT state, owner FROM oracle_values WHERE key = ? AND smiles = ?", (key, smi)
                ).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO oracle_values (key, smiles, state, owner, created) "
                        "VALUES (?, ?, 'pending', ?, ?)",
                        (key, smi, pid, now),
                    )
                    mine.append(smi)
                elif row[0] == "pending" and (row[1] == pid or not _alive(row[1])):
                    conn.execute(  # its process died before storing it: ours now
                        "UPDATE oracle_values SET owner = ?, created = ? WHERE key = ? AND smiles = ?",
                        (pid, now, key, smi),
                    )
                    mine.append(smi)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return mine

    def store(self, key: str, smiles: Sequence[str], computed: Computed) -> None:
        conn = self.connection()
        poses = computed.poses or [None] * len(smiles)
        seconds = computed.seconds or [None] * len(smiles)
        rows = [
            (None if not math.isfinite(v) else float(v), e, p, s, key, smi)
            for smi, v, e, p, s in zip(smiles, computed.values, computed.errors, poses, seconds)
        ]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "UPDATE oracle_values SET value = ?, error = ?, pose = ?, seconds = ?, state = 'done', "
                "owner = NULL WHERE key = ? AND smiles = ? AND state = 'pending'",
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def release(self, key: str, smiles: Iterable[str], owner: str | None = None) -> None:
        """Give back claims not computed (the oracle raised): another call may compute them."""
        conn = self.connection()
        conn.executemany(
            "DELETE FROM oracle_values WHERE key = ? AND smiles = ? AND state = 'pending' AND owner = ?",
            [(key, smi, owner or os.getpid()) for smi in smiles],
        )

    def release_owner(self, owner: str) -> int:
        """Give back every claim of ``owner`` (a Ray actor that died): returns how many."""
        return (
            self.connection()
            .execute("DELETE FROM oracle_values WHERE state = 'pending' AND owner = ?", (owner,))
            .rowcount
        )

    def info(self) -> list[dict[str, Any]]:
        """One row per oracle: kind, key, parameters, values stored, failures, pending, seconds paid."""
        if not self.path.exists():
            return []
        conn = self.connection()
        rows = conn.execute(
            "SELECT o.key, o.kind, o.params, "
            "SUM(v.state = 'done'), SUM(v.state = 'done' AND v.value IS NULL), SUM(v.state = 'pending'), "
            "SUM(COALESCE(v.seconds, 0)) "
            "FROM oracles o LEFT JOIN oracle_values v ON v.key = o.key GROUP BY o.key ORDER BY o.created"
        ).fetchall()
        return [
            {
                "key": key,
                "kind": kind,
                "params": json.loads(params),
                "values": int(done or 0),
                "failed": int(failed or 0),
                "pending": int(pending or 0),
                "seconds": float(seconds or 0.0),
            }
            for key, kind, params, done, failed, pending, seconds in rows
        ]

    def clear(self, key: str | None = None) -> int:
        """Delete the values of one oracle (``key``, or a unique prefix of it) or of all; returns how many."""
        if not self.path.exists():
            return 0
        conn = self.connection()
        if key is None:
            n = conn.execute("DELETE FROM oracle_values").rowcount
            conn.execute("DELETE FROM oracles")
            return n
        keys = [k for (k,) in conn.execute("SELECT key FROM oracles WHERE key LIKE ?", (key + "%",))]
        if len(keys) != 1:
            raise MolgfnError(f"{self.path}: {len(keys)} oracles match {key!r} (see molgfn cache info)")
        n = conn.execute("DELETE FROM oracle_values WHERE key = ?", (keys[0],)).rowcount
        conn.execute("DELETE FROM oracles WHERE key = ?", (keys[0],))
        return n

    def poses(self, key: str, top: int) -> list[tuple[str, float, str]]:
        """(smiles, value, pose) of the ``top`` lowest values with a stored pose (docking: best scores)."""
        conn = self.connection()
        return conn.execute(
            "SELECT smiles, value, pose FROM oracle_values WHERE key = ? AND value IS NOT NULL "
            "AND pose IS NOT NULL ORDER BY value ASC LIMIT ?",
            (key, top),
        ).fetchall()


@dataclass
class OracleStats:
    """Calls of one expensive component: molecules asked for, found in the cache, computed, failed."""

    asked: int = 0
    cached: int = 0
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_calls": float(self.computed),
            f"{prefix}_cached": float(self.cached),
            f"{prefix}_failed": float(self.failed),
        }


class CachedComponent:
    """An expensive component behind the oracle cache: each canonical SMILES is computed once, ever.

    The wrapped component provides ``oracle_params()`` (what its values depend on) and
    ``compute_molecules(smiles) -> Computed``."""

    expensive = True

    def __init__(self, component: Any, cache: OracleCache, wait_s: float = 3600.0) -> None:
        self.component = component
        self.cache = cache
        self.params = component.oracle_params()
        self.key = oracle_key(self.params)
        self.wait_s = wait_s
        self.stats = OracleStats()
        self.last_errors: dict[str, str] = {}
        self.last_cached = np.zeros(0)
        self._waited: set[str] = set()

    @property
    def kind(self) -> str:
        return self.component.kind

    def __getattr__(self, name: str) -> Any:  # the wrapped component's other attributes
        if name == "component":
            raise AttributeError(name)
        return getattr(self.component, name)

    def compute(self, batch: MolBatch) -> np.ndarray:
        from rdkit import Chem

        canon = [Chem.MolToSmiles(m) if m is not None else None for m in batch.mols]
        wanted = sorted({c for c in canon if c})
        self.cache.register(self.key, self.kind, self.params)
        known = self.cache.lookup(self.key, wanted)
        found = set(known)
        self.stats.asked += sum(1 for c in canon if c)
        missing = [c for c in wanted if c not in known]
        if missing:
            self.stats.cached += len(wanted) - len(missing)
            known.update(self._compute(missing))
        else:
            self.stats.cached += len(wanted)
        self.last_errors = {c: e for c, (_, e) in known.items() if e}
        # per molecule: 1 where the value was already paid for (this call computed none of those)
        self.last_cached = np.array([1.0 if c in found or c in self._waited else 0.0 for c in canon])
        return np.array([known[c][0] if c else np.nan for c in canon], dtype=np.float64)

    def errors_of(self, batch: MolBatch) -> list[str]:
        """Why each molecule of ``batch`` has no value ('' where it has one, or is not a molecule)."""
        from rdkit import Chem

        canon = [Chem.MolToSmiles(m) if m is not None else "" for m in batch.mols]
        known = self.cache.lookup(self.key, sorted({c for c in canon if c}))
        return [(known.get(c, (0.0, None))[1] or "") if c else "" for c in canon]

    def _compute(self, missing: list[str]) -> dict[str, tuple[float, str | None]]:
        out: dict[str, tuple[float, str | None]] = {}
        self._waited: set[str] = set()
        deadline = time.monotonic() + self.wait_s
        while missing:
            mine = self.cache.claim(self.key, missing)
            if mine:
                try:
                    computed = self.component.compute_molecules(mine)
                except BaseException:
                    self.cache.release(self.key, mine)
                    raise
                self.cache.store(self.key, mine, computed)
                self.stats.computed += len(mine)
                self.stats.failed += int(np.sum(~np.isfinite(computed.values)))
                self.stats.seconds += float(sum(computed.seconds or []))
                out.update({s: (float(v), e) for s, v, e in zip(mine, computed.values, computed.errors)})
            rest = [s for s in missing if s not in out]
            if not rest:
                break
            done = self.cache.lookup(self.key, rest)  # computed meanwhile by the process that claimed them
            out.update(done)
            self._waited.update(done)
            self.stats.cached += len(done)
            missing = [s for s in rest if s not in done]
            if missing:
                if time.monotonic() > deadline:
                    raise MolgfnError(
                        f"{self.cache.path}: {len(missing)} molecules stayed claimed by another process for "
                        f"{self.wait_s:g} s"
                    )
                time.sleep(0.2)
        return out


# ------------------------------------------------------------------------------------ on a Ray cluster
# In a Ray actor every cache file is served by one CacheServer on the driver's machine, so that the
# actors of every node share one file and its claims (no molecule paid for twice, whichever node asks).
_ROUTE: tuple[Any, str] | None = None


def open_cache(path: str | Path | None = None) -> OracleCache | RemoteOracleCache:
    """The cache file at ``path`` (default: :func:`default_cache_path`), through the cache server when
    this process is a Ray actor of a pool (:func:`route_to`)."""
    cache = OracleCache(path)
    if _ROUTE is None:
        return cache
    server, owner = _ROUTE
    return RemoteOracleCache(server, owner, cache.path)


def route_to(server: Any, owner: str) -> None:
    """Send this process's cache calls to ``server`` (a CacheServer actor), claiming as ``owner``."""
    global _ROUTE
    _ROUTE = (server, owner)


class CacheServer:
    """The oracle cache files of a Ray pool, held by one process (a Ray actor) on the driver's machine."""

    def __init__(self, driver_pid: int) -> None:
        self.caches: dict[str, OracleCache] = {}
        self.driver_pid = driver_pid  # claims die with the driver: a new run takes back what it left

    def _owner(self, owner: str) -> str:
        return f"{owner}@{self.driver_pid}"

    def call(self, path: str, method: str, *args: Any) -> Any:
        cache = self.caches.get(path)
        if cache is None:
            cache = self.caches[path] = OracleCache(path)
        if method in ("claim", "release"):  # (key, smiles, owner)
            args = (*args[:2], self._owner(args[2]))
        return getattr(cache, method)(*args)

    def release_owner(self, owner: str) -> int:
        return sum(cache.release_owner(self._owner(owner)) for cache in self.caches.values())


def start_cache_server() -> Any:
    """A :class:`CacheServer` actor pinned to this (the driver's) node; needs a connected Ray."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    server = ray.remote(num_cpus=0, max_restarts=-1)(CacheServer).options(scheduling_strategy=here)
    return server.remote(os.getpid())


class RemoteOracleCache:
    """:class:`OracleCache`'s interface, each call answered by the driver's :class:`CacheServer`."""

    def __init__(self, server: Any, owner: str, path: Path) -> None:
        self.server, self.owner, self.path = server, owner, path

    def _call(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(self.server.call.remote(str(self.path), method, *args))

    def register(self, key: str, kind: str, params: Mapping[str, Any]) -> None:
        self._call("register", key, kind, dict(params))

    def lookup(self, key: str, smiles: Sequence[str]) -> dict[str, tuple[float, str | None]]:
        return self._call("lookup", key, list(smiles))

    def claim(self, key: str, smiles: Sequence[str]) -> list[str]:
        return self._call("claim", key, list(smiles), self.owner)

    def store(self, key: str, smiles: Sequence[str], computed: Computed) -> None:
        self._call("store", key, list(smiles), computed)

    def release(self, key: str, smiles: Iterable[str]) -> None:
        self._call("release", key, list(smiles), self.owner)
