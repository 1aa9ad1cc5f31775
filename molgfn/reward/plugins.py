"""User plugin components: a Python callable and an external command, each scoring a batch of SMILES.

Both receive the batch's *valid* SMILES (as given by the caller, in order) in one call and must return
exactly one finite number per SMILES; invalid molecules are never sent and score 0. Any failure —
an exception, a non-zero exit, a timeout, output that is not one number per molecule, NaN or infinity —
raises :class:`~molgfn.errors.MolgfnError` naming the plugin: a broken reward must stop a run, not
quietly train the sampler on zeros.

Timeouts. The Python callable runs in a *daemon worker thread* that the caller waits on for at most
``timeout`` seconds. A thread keeps the call cheap (no process start, no pickling, and the plugin can
keep a model loaded between calls), which matters because the GFlowNet scores a batch at every step.
The price: Python cannot kill a thread, so a hung callable is abandoned (it keeps running in the
background until the process exits; being a daemon thread it does not block exit) and the reward
raises. Use a ``command`` plugin if a hang must be killed. The external command runs in its own
process group, which is killed on timeout.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from molgfn.chem.molecules import MolBatch
from molgfn.errors import MolgfnError
from molgfn.reward._config import Table
from molgfn.reward.cache import Computed
from molgfn.reward.components import resolve_path
from molgfn.reward.kinds import register_kind

DEFAULT_TIMEOUT_S = 60.0


def _check_scores(values: Any, n: int, plugin: str) -> np.ndarray:
    """Validate a plugin's output: ``n`` finite numbers, as a float array."""
    try:
        scores = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MolgfnError(f"{plugin}: returned values that are not numbers ({exc})") from exc
    if scores.ndim != 1 or scores.shape[0] != n:
        raise MolgfnError(f"{plugin}: returned {scores.size} values of shape {scores.shape} for {n} SMILES")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        i = int(bad[0])
        raise MolgfnError(
            f"{plugin}: returned a non-finite value ({scores[i]}) for SMILES #{i}; "
            f"return a number for every molecule (e.g. 0 where it cannot be scored)"
        )
    return scores


def _scatter(batch: MolBatch, index: np.ndarray, scores: np.ndarray) -> np.ndarray:
    out = np.full(len(batch), np.nan)
    out[index] = scores
    return out


def import_callable(spec: str) -> Callable[[list[str]], Sequence[float]]:
    """Import ``package.module:function`` (the part after ':' may be dotted, e.g. ``mod:Scorer.score``)."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"must look like 'package.module:function', got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's plugin failing
        raise ValueError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj


class _Expensive:
    """What the oracle cache needs of a plugin marked ``expensive = true``."""

    expensive = False

    def oracle_params(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, **self._identity()}

    def compute_molecules(self, smiles: Sequence[str]) -> Computed:
        values = self.compute(MolBatch.parse(list(smiles)))
        errors = [None if np.isfinite(v) else "no value" for v in values]
        return Computed(values, errors)


class PythonPlugin(_Expensive):
    """A user function ``f(smiles: list[str]) -> list[float]`` called once per batch, with a timeout."""

    kind = "python"

    def _identity(self) -> dict[str, Any]:
        return {"function": f"{self.function.__module__}:{getattr(self.function, '__qualname__', '')}"}

    def __init__(self, function: Callable[[list[str]], Sequence[float]], name: str, timeout: float) -> None:
        self.function = function
        self.name = name
        self.timeout = timeout

    @classmethod
    def from_config(cls, table: Table, name: str) -> PythonPlugin:
        spec = table.string("function")
        timeout = table.number("timeout", DEFAULT_TIMEOUT_S, gt=0.0)
        try:
            function = import_callable(spec)
        except ValueError as exc:
            raise table.error("function", f"python plugin {name!r}: {exc}") from exc
        plugin = cls(function, name, timeout)
        plugin.expensive = table.boolean("expensive", False)
        return plugin

    @property
    def label(self) -> str:
        return f"python plugin {self.name!r} ({getattr(self.function, '__qualname__', self.function)})"

    def compute(self, batch: MolBatch) -> np.ndarray:
        index = np.flatnonzero(batch.valid)
        if index.size == 0:
            return np.full(len(batch), np.nan)
        smiles = [batch.smiles[i] for i in index]
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["value"] = self.function(smiles)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller below
                result["error"] = exc

        worker = threading.Thread(target=work, name=f"reward-plugin-{self.name}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise MolgfnError(f"{self.label}: timed out after {self.timeout:g} s on {len(smiles)} SMILES")
        if "error" in result:
            exc = result["error"]
            raise MolgfnError(f"{self.label}: raised {type(exc).__name__}: {exc}") from exc
        return _scatter(batch, index, _check_scores(result.get("value"), len(smiles), self.label))


class CommandPlugin(_Expensive):
    """An external program: SMILES on stdin, one per line; one number per line on stdout, same order.

    Run from ``argv`` directly (never through a shell), in ``base_dir`` (the config file's folder), with
    a timeout after which its whole process group is killed. A non-zero exit status is a failure.
    """

    kind = "command"

    def __init__(self, argv: list[str], name: str, timeout: float, cwd: Path | None = None) -> None:
        self.argv = argv
        self.name = name
        self.timeout = timeout
        self.cwd = cwd

    @classmethod
    def from_config(cls, table: Table, name: str, base_dir: Path | None) -> CommandPlugin:
        argv = table.strings("command")
        timeout = table.number("timeout", DEFAULT_TIMEOUT_S, gt=0.0)
        program = argv[0]
        if os.sep in program:
            found = resolve_path(program, base_dir).is_file()
        else:
            found = shutil.which(program) is not None
        if not found:
            raise table.error("command", f"command plugin {name!r}: program not found: {program!r}")
        plugin = cls(argv, name, timeout, cwd=base_dir)
        plugin.expensive = table.boolean("expensive", False)
        return plugin

    def _identity(self) -> dict[str, Any]:
        return {"command": list(self.argv)}

    @property
    def label(self) -> str:
        return f"command plugin {self.name!r} ({' '.join(self.argv)})"

    def _run(self, stdin_text: str) -> str:
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self.cwd,
                start_new_session=True,  # its own process group, so a timeout kills its children too
            )
        except OSError as exc:
            raise MolgfnError(f"{self.label}: cannot start: {exc}") from exc
        try:
            stdout, stderr = proc.communicate(stdin_text, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            raise MolgfnError(f"{self.label}: timed out after {self.timeout:g} s") from None
        if proc.returncode != 0:
            tail = stderr.strip().splitlines()[-3:]
            detail = f": {' | '.join(tail)}" if tail else ""
            raise MolgfnError(f"{self.label}: exited with status {proc.returncode}{detail}")
        return stdout

    def compute(self, batch: MolBatch) -> np.ndarray:
        index = np.flatnonzero(batch.valid)
        if index.size == 0:
            return np.full(len(batch), np.nan)
        smiles = [batch.smiles[i] for i in index]
        stdout = self._run("".join(s + "\n" for s in smiles))
        lines = stdout.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if len(lines) != len(smiles):
            raise MolgfnError(
                f"{self.label}: wrote {len(lines)} lines for {len(smiles)} SMILES (expected one each)"
            )
        values = []
        for number, line in enumerate(lines, start=1):
            try:
                values.append(float(line))
            except ValueError:
                raise MolgfnError(
                    f"{self.label}: output line {number} is not a number: {line[:80]!r}"
                ) from None
        return _scatter(batch, index, _check_scores(values, len(smiles), self.label))


@register_kind("python", unit_interval=True, help="a Python function f(smiles) -> values in [0, 1]")
def _python_from_config(table: Table, name: str, base_dir: Path | None) -> PythonPlugin:
    return PythonPlugin.from_config(table, name)


@register_kind("command", unit_interval=True, help="an external program reading SMILES, writing values")
def _command_from_config(table: Table, name: str, base_dir: Path | None) -> CommandPlugin:
    return CommandPlugin.from_config(table, name, base_dir)
