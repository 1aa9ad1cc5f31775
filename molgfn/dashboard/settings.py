"""Dashboard settings (from the environment) and its bookkeeping folder, ``<runs_dir>/.dashboard/``."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from molgfn.errors import MolgfnError

DEFAULT_MAX_CONCURRENT = 2
DEFAULT_MAX_UPLOAD_MB = 50
ENV_RUNS_DIR = "MOLGFN_RUNS_DIR"
ENV_CAMPAIGNS_DIR = "MOLGFN_CAMPAIGNS_DIR"
ENV_MAX_CONCURRENT = "MOLGFN_MAX_CONCURRENT"
ENV_MAX_UPLOAD_MB = "MOLGFN_MAX_UPLOAD_MB"
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".sdf")


# --------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Dashboard settings, from environment variables (``molgfn app`` sets them from its options)."""

    runs_dir: Path
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    campaigns_dir: Path | None = None  # None: 'campaigns' beside the runs folder

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        runs_dir = Path(env.get(ENV_RUNS_DIR) or "runs").expanduser().resolve()
        campaigns = env.get(ENV_CAMPAIGNS_DIR)
        return cls(
            runs_dir=runs_dir,
            campaigns_dir=Path(campaigns).expanduser().resolve()
            if campaigns
            else runs_dir.parent / "campaigns",
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


# ------------------------------------------------------------------------------------------ state folder
def state_dir(runs_dir: Path) -> Path:
    """``<runs_dir>/.dashboard``, the dashboard's bookkeeping folder, with its sub-folders made."""
    path = Path(runs_dir) / ".dashboard"
    for sub in ("configs", "launched", "uploads", "proxies"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def safe_file_name(name: str, max_length: int = 80) -> str:
    """A file name safe to create inside a folder: the base name only, characters outside
    ``[A-Za-z0-9_.-]`` replaced by ``_``, no leading dots, not empty."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base).lstrip(".")
    base = base[-max_length:] if len(base) > max_length else base
    return base or "upload"


def write_new_file(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new file in ``folder`` named ``<UTC time>-<safe name>`` (``-2``, ``-3``, ... when
    taken), created exclusively: two uploads with the same name, even in the same second, never
    overwrite each other."""
    from datetime import datetime, timezone

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    safe = safe_file_name(name)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        path = folder / (f"{stamp}-{safe}" if n == 1 else f"{stamp}-{n}-{safe}")
        try:
            with open(path, "xb") as fh:
                fh.write(data)
            return path
        except FileExistsError:
            continue
    raise OSError(f"{folder}: no free name for {safe}")  # pragma: no cover
