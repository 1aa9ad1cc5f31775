"""Docking with AutoDock Vina as a reward component: ``kind = "docking"`` (extra ``molgfn[docking]``).

Each molecule gets an RDKit conformer (ETKDG, then MMFF), is prepared for Vina by meeko (rotatable bonds,
AutoDock atom types), and is docked into the receptor's box; the raw value is the best Vina score in
kcal/mol (lower is better). Docking runs in worker processes that compute the receptor's grid maps once
and then dock one molecule after another; a molecule that takes longer than ``timeout`` seconds has its
worker killed (a fresh one recomputes the maps) and scores NaN, as does one that cannot be prepared (no
conformer, an element Vina has no type for). NaN becomes desirability 0: it never stops a run. Values go
through the oracle cache (:mod:`molgfn.reward.cache`), so a molecule is docked once, ever.

Configuration (``[[reward.components]]``)::

    kind = "docking"
    receptor = "data/receptors/sEH_4jnc/4jnc_receptor.pdbqt"   # PDBQT
    box_from = "data/receptors/sEH_4jnc/4jnc_ligand.pdb"        # or center = [x, y, z] and size = [x, y, z]
    padding = 4.0            # Å added on each side of box_from's bounding box
    exhaustiveness = 1       # Vina's search effort (8 is Vina's default; 1 is ~4x faster, a little noisier)
    seed = 0
    timeout = 120            # seconds per molecule
    workers = 1              # docking processes (each one core)
    transform = { kind = "reverse_sigmoid", low = -10.0, high = -4.0, k = 0.5 }
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from molgfn.errors import MolgfnError
from molgfn.processes import worker_setup
from molgfn.reward.cache import Computed, file_digest
from molgfn.reward.kinds import register_kind

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_PADDING = 4.0
LIGAND_SUFFIXES = (".pdb", ".sdf", ".mol", ".mol2")


def require_docking() -> tuple[str, str]:
    """The versions of vina and meeko; a clear error when the extra is not installed."""
    try:
        import meeko
        import vina  # noqa: F401
    except ImportError as exc:
        raise MolgfnError(
            f"docking needs the docking extra: pip install 'molgfn[docking]' (cannot import {exc.name})"
        ) from None
    from importlib.metadata import version

    return version("vina"), meeko.__version__


def box_from_ligand(path: Path, padding: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(center, size) of the bounding box of a ligand's atoms, ``padding`` Å added on each side."""
    from rdkit import Chem

    suffix = path.suffix.lower()
    if suffix == ".pdb":
        mol = Chem.MolFromPDBFile(str(path), sanitize=False, removeHs=False)
    elif suffix in (".sdf", ".mol"):
        mol = Chem.MolFromMolFile(str(path), sanitize=False, removeHs=False)
    elif suffix == ".mol2":
        mol = Chem.MolFromMol2File(str(path), sanitize=False, removeHs=False)
    else:
        raise ValueError(f"must be a ligand file ({', '.join(LIGAND_SUFFIXES)})")
    if mol is None or mol.GetNumConformers() == 0:
        raise ValueError("no molecule with coordinates in it")
    xyz = mol.GetConformer().GetPositions()
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    center = tuple(round(float(c), 3) for c in (lo + hi) / 2)
    size = tuple(round(float(s), 3) for s in (hi - lo) + 2 * padding)
    return center, size


def prepare_ligand(smiles: str, seed: int) -> str:
    """A PDBQT string of one RDKit conformer of ``smiles`` (raises ValueError with the reason)."""
    from meeko import MoleculePreparation, PDBQTWriterLegacy
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError("not a valid molecule")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise ValueError("RDKit could not embed a conformer")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    else:
        AllChem.UFFOptimizeMolecule(mol, maxIters=500)
    setups = MoleculePreparation().prepare(mol)
    pdbqt, ok, error = PDBQTWriterLegacy.write_string(setups[0])
    if not ok:
        raise ValueError(
            f"meeko could not write the ligand: {'; '.join(dict.fromkeys(error.strip().splitlines()))}"
        )
    return pdbqt


@dataclass(frozen=True)
class DockingSetup:
    receptor: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    exhaustiveness: int = 1
    seed: int = 0


def _pose_molblock(vina_obj: Any) -> str | None:
    from meeko import PDBQTMolecule, RDKitMolCreate
    from rdkit import Chem

    try:
        poses = vina_obj.poses(n_poses=1)
        mols = RDKitMolCreate.from_pdbqt_mol(PDBQTMolecule(poses, skip_typing=True))
        return Chem.MolToMolBlock(mols[0]) if mols and mols[0] is not None else None
    except Exception:  # noqa: BLE001 - the pose is optional
        return None


def _dock_loop(conn: Connection, setup: DockingSetup, parent: int | None = None) -> None:
    """A docking worker: grid maps once, then one molecule per message until None."""
    # Ctrl-C reaches the whole process group: the trainer stops gracefully, so its workers must not die
    # first; SIGTERM is not the graceful-stop handler of the process this one was forked from
    worker_setup(parent)
    from rdkit import RDLogger
    from vina import Vina

    RDLogger.DisableLog("rdApp.*")
    engine = Vina(sf_name="vina", cpu=1, seed=setup.seed, verbosity=0)
    engine.set_receptor(setup.receptor)
    engine.compute_vina_maps(center=list(setup.center), box_size=list(setup.size))
    conn.send(("ready", None, None))
    while True:
        smiles = conn.recv()
        if smiles is None:
            return
        start = time.perf_counter()
        try:
            pdbqt = prepare_ligand(smiles, setup.seed)
        except Exception as exc:  # noqa: BLE001 - any preparation failure is that molecule's NaN
            conn.send(("error", f"preparation failed: {exc}", time.perf_counter() - start))
            continue
        try:
            engine.set_ligand_from_string(pdbqt)
            engine.dock(exhaustiveness=setup.exhaustiveness, n_poses=1)
            score = float(engine.energies(n_poses=1)[0][0])
            conn.send(("ok", (score, _pose_molblock(engine)), time.perf_counter() - start))
        except Exception as exc:  # noqa: BLE001
            conn.send(("error", f"docking failed: {exc}", time.perf_counter() - start))


class _Worker:
    def __init__(self, setup: DockingSetup) -> None:
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_dock_loop, args=(child, setup, os.getpid()), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.job: tuple[int, str, float] | None = None  # (index, smiles, deadline)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class Docking:
    """Best Vina score (kcal/mol) of each molecule; NaN where it cannot be prepared or docked in time."""

    kind = "docking"
    expensive = True

    def __init__(
        self, setup: DockingSetup, timeout: float = DEFAULT_TIMEOUT_S, processes: int = 1, versions=("", "")
    ) -> None:
        self.setup = setup
        self.timeout = timeout
        self.processes = processes
        self.versions = versions
        self._receptor_digest = file_digest(setup.receptor)
        self._workers: list[_Worker] = []
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_workers"] = []  # a copy in another process starts its own
        return state

    def oracle_params(self) -> dict[str, Any]:
        return {
            "kind": "docking",
            "receptor_sha256": self._receptor_digest,
            "center": list(self.setup.center),
            "size": list(self.setup.size),
            "exhaustiveness": self.setup.exhaustiveness,
            "seed": self.setup.seed,
            "vina": self.versions[0],
            "meeko": self.versions[1],
        }

    def close(self) -> None:
        if self._pid != os.getpid():
            self._workers = []
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.kill()
        self._workers = []

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def compute(self, batch) -> np.ndarray:
        """Raw values for a :class:`~molgfn.chem.molecules.MolBatch` (without the cache)."""
        from rdkit import Chem

        smiles = [Chem.MolToSmiles(m) for m in batch.mols if m is not None]
        values = iter(self.compute_molecules(smiles).values)
        return np.array([next(values) if m is not None else np.nan for m in batch.mols])

    def compute_molecules(self, smiles: Sequence[str]) -> Computed:
        """Dock ``smiles`` on the worker processes, each molecule with its own deadline."""
        n = len(smiles)
        values = np.full(n, np.nan)
        errors: list[str | None] = [None] * n
        poses: list[str | None] = [None] * n
        seconds = [0.0] * n
        todo = list(range(n))[::-1]
        if self._pid != os.getpid():  # a forked copy: the workers belong to the process it came from
            self._workers, self._pid = [], os.getpid()
        while len(self._workers) < min(self.processes, max(n, 1)):
            self._workers.append(_Worker(self.setup))
        busy = 0
        while todo or busy:
            for worker in self._workers:
                if worker.ready and worker.job is None and todo:
                    i = todo.pop()
                    worker.conn.send(smiles[i])
                    worker.job = (i, smiles[i], time.monotonic() + self.timeout)
                    busy += 1
            ready = wait([w.conn for w in self._workers], timeout=0.5)
            now = time.monotonic()
            for k, worker in enumerate(list(self._workers)):
                if worker.conn in ready:
                    try:
                        status, payload, spent = worker.conn.recv()
                    except (EOFError, OSError):  # the worker died (killed, out of memory)
                        status, payload, spent = "died", None, 0.0
                    if status == "ready":
                        worker.ready = True
                        continue
                    if status == "died":
                        self._replace(k, worker)
                        if worker.job is not None:
                            i = worker.job[0]
                            errors[i] = "the docking process died"
                            busy -= 1
                        elif not worker.ready:
                            raise MolgfnError(
                                f"docking: the receptor {self.setup.receptor} could not be loaded by Vina"
                            )
                        continue
                    i = worker.job[0]
                    worker.job = None
                    busy -= 1
                    seconds[i] = float(spent)
                    if status == "ok":
                        values[i], poses[i] = payload
                    else:
                        errors[i] = payload
                elif worker.job is not None and now > worker.job[2]:
                    i = worker.job[0]
                    errors[i] = f"timed out after {self.timeout:g} s"
                    seconds[i] = self.timeout
                    busy -= 1
                    self._replace(k, worker)
        return Computed(values, errors, poses, seconds)

    def _replace(self, k: int, worker: _Worker) -> None:
        worker.kill()
        self._workers[k] = _Worker(self.setup)


def docking_from_config(table: Any, name: str, base_dir: Path | None) -> Docking:
    """The docking component of a ``[[reward.components]]`` table; every problem names its field."""
    from molgfn.reward.components import resolve_path

    versions = require_docking()
    receptor = resolve_path(table.string("receptor"), base_dir)
    if not receptor.is_file():
        raise table.error("receptor", f"receptor file not found: {receptor}")
    if receptor.suffix.lower() != ".pdbqt":
        raise table.error("receptor", f"must be a PDBQT file (got {receptor.name})")
    has_box, has_ligand = table.has("center") or table.has("size"), table.has("box_from")
    if has_box == has_ligand:
        raise MolgfnError(f"{table.path}: give either center and size, or box_from (a ligand file)")
    if has_ligand:
        ligand = resolve_path(table.string("box_from"), base_dir)
        padding = table.number("padding", DEFAULT_PADDING, ge=0.0)
        if not ligand.is_file():
            raise table.error("box_from", f"ligand file not found: {ligand}")
        try:
            center, size = box_from_ligand(ligand, padding)
        except (ValueError, OSError) as exc:
            raise table.error("box_from", f"{ligand}: {exc}") from None
    else:
        center = _vector(table, "center", positive=False)
        size = _vector(table, "size", positive=True)
    setup = DockingSetup(
        str(receptor),
        center,  # type: ignore[arg-type]
        size,  # type: ignore[arg-type]
        exhaustiveness=table.integer("exhaustiveness", 1, ge=1),
        seed=table.integer("seed", 0, ge=0),
    )
    timeout = table.number("timeout", DEFAULT_TIMEOUT_S, gt=0.0)
    processes = table.integer("workers", 1, ge=1)
    return Docking(setup, timeout=timeout, processes=processes, versions=versions)


def _vector(table: Any, key: str, positive: bool) -> tuple[float, float, float]:
    value = table.raw(key)
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(v) for v in value)
    ):
        raise table.error(key, f"must be three numbers [x, y, z] in Å (got {value!r})")
    if positive and not all(v > 0 for v in value):
        raise table.error(key, f"must be positive in every direction (got {list(value)})")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


# -10 kcal/mol (a strong binder of sEH) -> ~0.95, -7 -> 0.5, -4 (a fragment) -> ~0.05
DEFAULT_TRANSFORM = {"kind": "reverse_sigmoid", "low": -10.0, "high": -4.0, "k": 0.5}
register_kind(
    "docking",
    help="best AutoDock Vina score in kcal/mol (lower is better); molgfn[docking]",
    default_transform=DEFAULT_TRANSFORM,
)(docking_from_config)
