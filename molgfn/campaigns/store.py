"""A campaign's folder and its SQLite store (WAL): every labelled molecule, the phases that finished.

    campaigns/<id>/
      campaign.toml        the validated config
      campaign.sqlite      molecules (one row per molecule, its label once it has one) and phases
      rounds/<k>/          proxy.pt, generator/ (a training run), batch.csv (the exported batch)

A phase is recorded when it ends, in the same transaction as what it produced, so a crash leaves either
the phase done or nothing of it."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from molgfn.errors import MolgfnError
from molgfn.training.runs import open_writer

PHASES = ("start", "proxy", "generator", "select", "label", "report")
SCHEMA = """
CREATE TABLE IF NOT EXISTS molecules (
    id TEXT PRIMARY KEY,
    smiles TEXT NOT NULL UNIQUE,
    round INTEGER NOT NULL,
    source TEXT NOT NULL,
    predicted REAL,
    spread REAL,
    acquisition REAL,
    label REAL,
    error TEXT,
    labelled REAL
);
CREATE TABLE IF NOT EXISTS phases (
    round INTEGER NOT NULL,
    phase TEXT NOT NULL,
    finished REAL NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (round, phase)
);
"""


def molecule_id(round_: int, index: int) -> str:
    """The stable id of a batch's ``index``-th molecule: ``R03-0017`` (round 0: the start set)."""
    return f"R{round_:02d}-{index:04d}"


class CampaignStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    @property
    def db_path(self) -> Path:
        return self.path / "campaign.sqlite"

    @property
    def config_path(self) -> Path:
        return self.path / "campaign.toml"

    def round_dir(self, round_: int) -> Path:
        folder = self.path / "rounds" / f"{round_:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.db_path.exists() and not self.path.is_dir():
                raise MolgfnError(f"{self.path}: no such campaign")
            self._conn = open_writer(self.db_path, SCHEMA)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------------------------------ phases
    def finish_phase(
        self, round_: int, phase: str, info: dict[str, Any] | None = None, *, molecules: Sequence[dict] = ()
    ) -> None:
        """Record ``phase`` of ``round_`` as done, with the ``molecules`` it added, in one transaction."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if molecules:
                self._insert(conn, molecules)
            conn.execute(
                "INSERT OR REPLACE INTO phases (round, phase, finished, info) VALUES (?, ?, ?, ?)",
                (round_, phase, time.time(), json.dumps(info or {}, default=float)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def phase(self, round_: int, phase: str) -> dict[str, Any] | None:
        row = (
            self.connection()
            .execute("SELECT info FROM phases WHERE round = ? AND phase = ?", (round_, phase))
            .fetchone()
        )
        return None if row is None else json.loads(row[0])

    def phases(self) -> pd.DataFrame:
        frame = pd.read_sql_query(
            "SELECT round, phase, finished, info FROM phases ORDER BY round, finished", self.connection()
        )
        return frame

    def last_round(self) -> int:
        """The highest round that has a finished phase (-1: none)."""
        row = self.connection().execute("SELECT MAX(round) FROM phases").fetchone()
        return -1 if row[0] is None else int(row[0])

    # --------------------------------------------------------------------------------------- molecules
    @staticmethod
    def _insert(conn: sqlite3.Connection, molecules: Iterable[dict]) -> None:
        columns = (
            "id",
            "smiles",
            "round",
            "source",
            "predicted",
            "spread",
            "acquisition",
            "label",
            "error",
            "labelled",
        )
        conn.executemany(
            f"INSERT INTO molecules ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [tuple(_plain(m.get(c)) for c in columns) for m in molecules],
        )

    def set_labels(self, labels: dict[str, tuple[float, str | None]]) -> int:
        """Store labels by molecule id (value, error); a molecule that already has a label keeps it.
        Returns how many were stored."""
        conn = self.connection()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            stored = 0
            for mol_id, (value, error) in labels.items():
                cursor = conn.execute(
                    "UPDATE molecules SET label = ?, error = ?, labelled = ? WHERE id = ? AND labelled IS NULL",
                    (_plain(value), error, now, mol_id),
                )
                stored += cursor.rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stored

    def molecules(self, round_: int | None = None) -> pd.DataFrame:
        where, params = ("WHERE round = ?", (round_,)) if round_ is not None else ("", ())
        return pd.read_sql_query(
            f"SELECT * FROM molecules {where} ORDER BY round, id", self.connection(), params=params
        )

    def labelled(self) -> pd.DataFrame:
        """Every molecule with a finite label."""
        frame = self.molecules()
        return frame[frame["labelled"].notna() & frame["label"].notna()].reset_index(drop=True)

    def known_smiles(self) -> set[str]:
        return {s for (s,) in self.connection().execute("SELECT smiles FROM molecules")}

    # ---------------------------------------------------------------------------------------- status
    def write_status(self, **fields: Any) -> None:
        """status.json beside the store: what the campaign process is doing (for the dashboard)."""
        path = self.path / "status.json"
        current: dict[str, Any] = {}
        try:
            current = json.loads(path.read_text())
        except (OSError, ValueError):
            pass
        current.update(fields, updated=time.time(), pid=os.getpid())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=1, default=float))
        os.replace(tmp, path)

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, ValueError):
            return {}


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value
