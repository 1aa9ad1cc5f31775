"""Checkpoints that are verified before they are trusted (docs/reliability.md).

A checkpoint ``checkpoints/step_00000100.pt`` is a ``torch.save`` file with a sidecar
``step_00000100.pt.sha256`` holding the SHA-256 of its bytes. Writing: both go to temporary files, are
fsync-ed, the sidecar is renamed into place first and the checkpoint last, so a kill at any moment leaves
either the previous checkpoints alone or a complete, verifiable new one. Reading: a checkpoint is used only
when its bytes match the sidecar (a file written before sidecars existed is checked with the CRC-32 of
every record of its zip container instead), it loads, and it holds the step its name says. A checkpoint
that fails is reported, never used; the caller falls back to the previous good one.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molgfn.errors import MolgfnError

HASH_SUFFIX = ".sha256"


def hash_path(path: Path) -> Path:
    return path.with_name(path.name + HASH_SUFFIX)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_checkpoint(target: Path, state: dict[str, Any]) -> Path:
    """``torch.save(state)`` to ``target`` with its SHA-256 sidecar, atomically (see the module doc).
    On any error (a full disk, a read-only folder) the temporary files are removed and the error raised."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp_hash = target.with_name(f".{target.name}{HASH_SUFFIX}.{os.getpid()}.tmp")
    try:
        _write_synced(tmp, data)
        _write_synced(tmp_hash, f"{digest}  {target.name}\n".encode())
        os.replace(tmp_hash, hash_path(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp_hash.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def verify_checkpoint(path: Path) -> str | None:
    """None when ``path`` is intact, else the reason it is not (one short phrase)."""
    try:
        sidecar = hash_path(path)
        if sidecar.is_file():
            expected = sidecar.read_text(encoding="utf-8").split()[0] if sidecar.stat().st_size else ""
            if _sha256_file(path) != expected:
                return "its SHA-256 does not match the one written with it"
            return None
        # written before checksums existed: the CRC-32 of every record of the zip container
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        return None if bad is None else f"record {bad} fails its CRC-32 check"
    except (OSError, zipfile.BadZipFile, IndexError) as exc:
        return f"unreadable ({exc.__class__.__name__}: {exc})"


def read_checkpoint(path: Path, step: int | None = None) -> dict[str, Any]:
    """The verified state of checkpoint ``path``; MolgfnError naming the file and the reason otherwise."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MolgfnError(f"{path}: checkpoint not found")
    reason = verify_checkpoint(path)
    if reason is not None:
        raise MolgfnError(f"{path}: damaged checkpoint, {reason}")
    try:
        # our own files; they hold numpy RNG states and arbitrary replay-buffer objects
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a damaged checkpoint
        raise MolgfnError(
            f"{path}: damaged checkpoint, cannot load it ({exc.__class__.__name__}: {exc})"
        ) from None
    if not isinstance(state, dict):
        raise MolgfnError(f"{path}: not a molgfn checkpoint (holds a {type(state).__name__})")
    if step is not None and state.get("step") != step:
        raise MolgfnError(f"{path}: damaged checkpoint, holds step {state.get('step')} instead of {step}")
    return state


@dataclass
class LatestCheckpoint:
    """The newest good checkpoint of a run (``state`` None if there is none) and the ones skipped."""

    state: dict[str, Any] | None
    path: Path | None = None
    skipped: list[str] = field(default_factory=list)  # "step_....pt: reason", newest first
    found: int = 0  # checkpoint files present, good or not


def latest_checkpoint(
    checkpoints: list[tuple[int, Path]], log: logging.Logger | None = None
) -> LatestCheckpoint:
    """Walk ``checkpoints`` (``(step, path)``, oldest first) from the newest; the first one that verifies
    and loads wins. Each one skipped is logged as a warning and listed in ``skipped``."""
    result = LatestCheckpoint(None, found=len(checkpoints))
    for step, path in reversed(checkpoints):
        try:
            state = read_checkpoint(path, step)
        except MolgfnError as exc:
            reason = str(exc).split(": ", 1)[-1]
            result.skipped.append(f"{path.name}: {reason}")
            if log is not None:
                log.warning("checkpoint %s is not used: %s", path.name, reason)
            continue
        result.state, result.path = state, path
        return result
    return result
