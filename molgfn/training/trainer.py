"""The trainer shell: seeding, the step loop, the run store, checkpoints, resume and signals.

The learning itself lives in an :class:`Algorithm` (the GFlowNet policy, sampler and objective, built by
``molgfn.training.algorithm.build_algorithm(cfg)``); the trainer only drives it::

    cfg = load_config("configs/tiny.toml")
    store = RunStore.create(cfg)
    Trainer.build(cfg, store).run()          # seeds, builds the algorithm, trains, checkpoints
    Trainer.build(cfg2, store).run(resume=True)  # from the latest checkpoint

Steps are numbered from 1: ``algorithm.train_step(k)`` performs the k-th update, the store's row ``step = k``
holds its metrics, and a checkpoint "at step k" holds the state after it. Resuming from the checkpoint at
step k deletes stored rows with step > k first, so no step is recorded twice.

Reproducibility: :func:`seed_everything` seeds python, numpy and torch before the algorithm is built, and a
checkpoint holds the three generators' states, so a CPU run with a fixed seed is reproduced exactly, with
or without a stop and resume in the middle (provided the algorithm's own ``state_dict`` is complete).

Signals: the first SIGINT or SIGTERM lets the current step finish, writes a checkpoint, sets the status to
``stopped`` and returns normally; a second one exits at once (status ``interrupted``; resume from the last
checkpoint).
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import random
import signal
import sqlite3
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molgfn import __version__
from molgfn.config import Config, config_to_toml
from molgfn.distributed import BackendLost
from molgfn.errors import MolgfnError
from molgfn.sampling.scoring import PROPERTY_PREFIX
from molgfn.training.checkpoints import HASH_SUFFIX, hash_path, latest_checkpoint, write_checkpoint
from molgfn.training.protocol import (  # noqa: F401 - StepOutput is part of the trainer's API
    DEFAULT_ALGORITHM,
    MOVED_ALGORITHMS,
    Algorithm,
    AlgorithmFactory,
    StepOutput,
)
from molgfn.training.runs import RunStore

KEEP_CHECKPOINTS = 2
CHECKPOINT_FORMAT = 1


class TrainingFailed(MolgfnError):
    """Training raised; the traceback is in the run's train.log and the status is ``failed``."""


# ------------------------------------------------------------------------------------------ reproducibility


def seed_everything(seed: int, device: str = "cpu", threads: int | None = None) -> None:
    """Seed python, numpy and torch; ask torch for deterministic kernels (warn-only where none exists)."""
    if threads is not None:
        torch.set_num_threads(threads)
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - code that uses the global generator
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_factory(spec: str) -> AlgorithmFactory:
    """``"package.module:function"`` -> the function building an :class:`Algorithm` from a Config. A factory
    an older run recorded under its former module is found where it lives now."""
    module_name, sep, attr = MOVED_ALGORITHMS.get(spec, spec).partition(":")
    if not sep or not module_name or not attr:
        raise MolgfnError(f"--algorithm {spec}: expected MODULE:FUNCTION, e.g. {DEFAULT_ALGORITHM}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise MolgfnError(f"--algorithm {spec}: cannot import module {module_name!r} ({exc})") from None
        raise
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise MolgfnError(f"--algorithm {spec}: module {module_name!r} has no function {attr!r}")
    return factory


def build_seeded(cfg: Config, factory: AlgorithmFactory | str = DEFAULT_ALGORITHM) -> Algorithm:
    """Check the device, seed python/numpy/torch from ``run.seed``, then ``factory(cfg)``: the same
    config and seed give the same initial model."""
    if cfg.run.device == "cuda" and not torch.cuda.is_available():
        raise MolgfnError("run.device: 'cuda' requested but torch finds no CUDA device (use 'cpu')")
    if isinstance(factory, str):
        factory = load_factory(factory)
    seed_everything(cfg.run.seed, cfg.run.device, cfg.run.threads)
    return factory(cfg)


# -------------------------------------------------------------------------------------------- checkpoints


def save_checkpoint(store: RunStore, state: dict[str, Any], step: int, keep: int = KEEP_CHECKPOINTS) -> Path:
    """Write ``state`` as the checkpoint of ``step`` with its SHA-256 (:func:`write_checkpoint`: atomic, a
    kill at any moment leaves the previous checkpoints intact); keep the last ``keep`` checkpoints."""
    target = write_checkpoint(store.checkpoint_path(step), state)
    for old_step, old in store.checkpoints()[:-keep]:
        if old_step != step:
            old.unlink(missing_ok=True)
            hash_path(old).unlink(missing_ok=True)
    for stale in store.checkpoints_dir.glob(".*.tmp"):  # left by a writer killed mid-write
        if not stale.name.endswith(f".{os.getpid()}.tmp"):
            stale.unlink(missing_ok=True)
    for orphan in store.checkpoints_dir.glob(f"step_*.pt{HASH_SUFFIX}"):  # its checkpoint never landed
        if not orphan.with_name(orphan.name[: -len(HASH_SUFFIX)]).exists():
            orphan.unlink(missing_ok=True)
    return target


def load_latest_checkpoint(store: RunStore, log: logging.Logger | None = None) -> dict[str, Any] | None:
    """The newest checkpoint that verifies (a damaged one is skipped with a warning), or None."""
    return latest_checkpoint(store.checkpoints(), log).state


# ------------------------------------------------------------------------------------------------ trainer


class _LogFile(logging.FileHandler):
    """train.log; a record that cannot be written (a full disk) is dropped, not printed as a traceback
    (the error that matters is reported on its own)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


class _StopRequest:
    """SIGINT/SIGTERM: the first asks the loop to stop after the current step; the second exits now."""

    def __init__(self, store: RunStore, log: logging.Logger) -> None:
        self.signum: int | None = None
        self.store = store
        self.log = log
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            self.signum = signum
            self.log.warning("%s received: stopping after this step (send again to exit at once)", name)
            return
        self.log.warning("second %s: exiting at once; resume from the last checkpoint", name)
        for handler in self.log.handlers:
            handler.flush()
        try:
            self.store.set_status("interrupted", message=f"second {name}: exited without a final checkpoint")
        finally:
            os._exit(128 + signum)


class Trainer:
    """Drives an :class:`Algorithm` for ``cfg.train.steps`` steps, recording into a :class:`RunStore`."""

    def __init__(
        self, cfg: Config, store: RunStore, algorithm: Algorithm, *, progress: bool | None = None
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.algorithm = algorithm
        self.progress = progress  # None: a progress bar when stderr is a terminal
        self.step = 0
        self.trajectories = 0
        self.wall = 0.0  # training seconds, summed over resumes
        self.backend_lost = False  # stopped because the Ray cluster went away (the CLI exits 3)
        self.log = logging.getLogger(f"molgfn.training.trainer.{store.id}")

    @classmethod
    def build(
        cls,
        cfg: Config,
        store: RunStore,
        factory: AlgorithmFactory | str | None = None,
        *,
        progress: bool | None = None,
    ) -> Trainer:
        """Seed everything, then build the algorithm with ``factory(cfg)`` (default: molgfn.training.algorithm)."""
        spec = factory if factory is not None else DEFAULT_ALGORITHM
        algorithm = build_seeded(cfg, spec)
        if isinstance(spec, str):
            store.set_meta("algorithm", spec)
        return cls(cfg, store, algorithm, progress=progress)

    # ------------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": __version__,
            "step": self.step,
            "trajectories": self.trajectories,
            "wall": self.wall,
            "algorithm": self.algorithm.state_dict(),
            "rng": rng_state(),
            "config": config_to_toml(self.cfg),
        }

    def checkpoint(self) -> Path:
        path = save_checkpoint(self.store, self.state(), self.step)
        self.log.info("checkpoint %s", path.name)
        return path

    def restore(self, *, restart: bool = False) -> bool:
        """Load the latest good checkpoint (algorithm, RNGs, counters); False when there is none and the
        run has nothing to lose. A damaged checkpoint is reported and the previous good one used; when
        no good one is left but the run has checkpoints or stored steps, MolgfnError (nothing changed)
        unless ``restart``: then it starts again from step 0."""
        found = latest_checkpoint(self.store.checkpoints(), self.log)
        for skipped in found.skipped:
            print(f"molgfn: warning: run {self.store.id}: checkpoint {skipped}; not used", file=sys.stderr)
        if found.state is None:
            stored = self.store.summary()["step"] or 0
            if (found.found or stored) and not restart:
                what = f"{found.found} checkpoint(s), none intact" if found.found else "no checkpoint"
                raise MolgfnError(
                    f"--resume {self.store.id}: {what}, and {stored} steps stored; nothing was changed. "
                    f"To train it again from step 0 (deleting those steps) add --restart"
                )
            if found.found or stored:
                self.log.warning("--restart: no intact checkpoint; training again from step 0")
            return False
        state = found.state
        self.algorithm.load_state_dict(state["algorithm"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.trajectories = int(state["trajectories"])
        self.wall = float(state["wall"])
        if found.skipped:
            print(
                f"molgfn: run {self.store.id}: resuming from the intact checkpoint {found.path.name}",
                file=sys.stderr,
            )
        return True

    # --------------------------------------------------------------------------------------------- run
    def run(self, *, resume: bool = False, restart: bool = False) -> str:
        """Train to ``cfg.train.steps``; returns the final status (``finished`` or ``stopped``).

        Raises :class:`TrainingFailed` (status ``failed``, traceback in train.log) if a step raises."""
        handler = _LogFile(self.store.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        self.log.addHandler(handler)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        try:
            return self._run(resume, restart)
        finally:
            close = getattr(self.algorithm, "close", None)
            if close is not None:  # worker processes, if the algorithm has any
                close()
            self.log.removeHandler(handler)
            handler.close()
            self.store.close()

    def _run(self, resume: bool, restart: bool = False) -> str:
        cfg, store = self.cfg, self.store
        steps = cfg.train.steps
        previous = store.status()
        if resume:
            if self.restore(restart=restart):
                self.log.info(
                    "resumed from the checkpoint at step %d (%d trajectories)", self.step, self.trajectories
                )
            else:
                self.log.info("no checkpoint to resume from: starting from step 0")
        try:  # the first writes: a read-only folder or a full disk stops here, with one line
            removed = store.truncate_after(self.step)
            started = previous.get("started") if resume else None
            store.set_status(
                "running",
                pid=os.getpid(),
                step=self.step,
                steps=steps,
                trajectories=self.trajectories,
                started=started or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                message=None,
            )
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise MolgfnError(f"run {store.id}: cannot write to {store.path} ({reason})") from None
        if removed:
            self.log.info(
                "removed %d stored steps after step %d (recorded after the checkpoint)", removed, self.step
            )
        self.log.info(
            "%s run %s: objective %s, steps %d -> %d, seed %d, pid %d",
            "resuming" if resume else "starting",
            store.id,
            cfg.objective.name,
            self.step,
            steps,
            cfg.run.seed,
            os.getpid(),
        )
        if self.step >= steps:
            self.log.info("nothing to do: step %d >= train.steps %d", self.step, steps)
            store.set_status("finished", step=self.step, trajectories=self.trajectories)
            return "finished"

        from tqdm.auto import tqdm

        show = sys.stderr.isatty() if self.progress is None else self.progress
        bar = tqdm(
            total=steps, initial=self.step, unit="step", disable=not show, dynamic_ncols=True, file=sys.stderr
        )
        last_checkpoint = in_step = self.step
        last_status = time.monotonic()
        postfix: dict[str, str] = {}
        oracle = _OracleCounts.of(store)
        nodes_of = getattr(self.algorithm, "scoring_nodes", None)
        if nodes_of is not None and nodes_of() is not None:
            self.log.info("scoring on Ray: %s", _ray_description())
            self._hook_progress(bar, postfix, oracle)
        try:
            with _StopRequest(store, self.log) as stop:
                while self.step < steps:
                    step = in_step = self.step + 1
                    start = time.perf_counter()
                    out = self.algorithm.train_step(step)
                    metrics = self._step_metrics(out, step, time.perf_counter() - start)
                    self.step = step
                    self.trajectories += int(out.n_trajectories)
                    self.wall += time.perf_counter() - start
                    components, properties = _split_properties(getattr(out, "components", None))
                    store.write_step(
                        step,
                        self.trajectories,
                        self.wall,
                        metrics,
                        out.smiles,
                        out.reward,
                        components,
                        properties,
                    )
                    bar.update(1)
                    oracle.add(metrics)
                    postfix.update(
                        traj_s=f"{metrics['traj_per_s']:.1f}",
                        reward=f"{metrics.get('reward_mean', math.nan):.3f}",
                        **oracle.postfix(),
                    )
                    bar.set_postfix(postfix)
                    if step % cfg.train.metrics_every == 0 or step == steps:
                        self.log.info(_format_metrics(step, steps, self.trajectories, metrics))
                        nodes = nodes_of() if nodes_of is not None else None
                        if nodes:
                            retried = self.algorithm.scoring_retried()
                            self.log.info(
                                "scored on: %s%s",
                                _format_nodes(nodes),
                                f" ({retried} pieces scored again after their actor died)" if retried else "",
                            )
                            store.set_meta("scoring_nodes", json.dumps(nodes, sort_keys=True))
                    stopping = stop.signum  # read once: a signal arriving later is handled next step
                    if step % cfg.train.checkpoint_every == 0 or step == steps or stopping is not None:
                        self.checkpoint()
                        last_checkpoint = step
                    if stopping is not None:
                        name = signal.Signals(stopping).name
                        store.set_status(
                            "stopped",
                            step=step,
                            trajectories=self.trajectories,
                            message=f"stopped by {name} at step {step}",
                        )
                        self.log.info(
                            "stopped by %s at step %d; resume with --resume %s", name, step, store.id
                        )
                        return "stopped"
                    now = time.monotonic()
                    if now - last_status > 2.0 or last_checkpoint == step:
                        store.set_status("running", step=step, trajectories=self.trajectories)
                        last_status = now
        except BackendLost as exc:  # the Ray cluster went away: keep what is done, stop cleanly
            self.backend_lost = True
            self.checkpoint()
            message = (
                f"stopped at step {self.step}: {exc}; resume with --resume {store.id} "
                "(--set run.backend=local, or --set run.ray_address=HOST:PORT of a new cluster)"
            )
            store.set_status("stopped", step=self.step, trajectories=self.trajectories, message=message)
            self.log.error(message)
            print(f"molgfn: {message}", file=sys.stderr)
            return "stopped"
        except Exception as exc:  # the algorithm, the store or a checkpoint: the run failed
            self._fail(exc, in_step)
            raise TrainingFailed(
                f"training failed at step {in_step}: {type(exc).__name__}: {exc} (traceback in {store.log_path})"
            ) from exc
        finally:
            bar.close()
        store.set_status("finished", step=self.step, trajectories=self.trajectories, message=None)
        self.log.info("finished: %d steps, %d trajectories, %.1f s", self.step, self.trajectories, self.wall)
        return "finished"

    def _hook_progress(self, bar: Any, postfix: dict[str, str], oracle: _OracleCounts) -> None:
        """Live counts while the Ray actors score a batch: the bar, and the status file for the dashboard."""
        last = {"bar": 0.0, "status": 0.0}

        def hook(done: int, in_flight: int) -> None:
            now = time.monotonic()
            oracle.in_flight = in_flight
            if now - last["bar"] > 0.5:
                postfix["in_flight"] = str(in_flight)
                bar.set_postfix(postfix)
                last["bar"] = now
            if now - last["status"] > 2.0 or in_flight == 0:  # the last report of a batch always lands
                self.store.set_status("running", oracle_in_flight=in_flight)
                last["status"] = now

        self.algorithm.set_scoring_progress(hook)

    def _step_metrics(self, out: StepOutput, step: int, seconds: float) -> dict[str, float]:
        missing = [a for a in ("metrics", "n_trajectories", "smiles", "reward") if not hasattr(out, a)]
        if missing:  # any object with StepOutput's fields will do
            raise TypeError(
                f"train_step must return a StepOutput, got {type(out).__name__} without {missing}"
            )
        metrics = {k: float(v) for k, v in out.metrics.items()}
        loss = metrics.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} at step {step}")
        reward = np.asarray(out.reward, dtype=float)
        if len(reward):
            metrics.setdefault("reward_mean", float(np.nanmean(reward)))
            metrics.setdefault("reward_max", float(np.nanmax(reward)))
        metrics["step_time"] = seconds
        metrics["traj_per_s"] = out.n_trajectories / seconds if seconds > 0 else math.nan
        return metrics

    def _fail(self, exc: BaseException, step: int) -> None:
        """Log the traceback and set the status ``failed`` with the reason, as far as the disk allows (a full
        disk may refuse both: the run then reads as ``interrupted``, its process being gone)."""
        try:
            self.log.error("step %d failed:\n%s", step, "".join(traceback.format_exception(exc)))
        except Exception:  # noqa: BLE001 - logging must not replace the error being reported
            pass
        try:
            self.store.set_status(
                "failed",
                step=self.step,
                trajectories=self.trajectories,
                message=f"{type(exc).__name__}: {exc}",
            )
        except (OSError, ValueError) as status_exc:
            print(
                f"molgfn: warning: cannot record the failure in {self.store.status_path}: {status_exc}",
                file=sys.stderr,
            )


def _split_properties(components: dict | None) -> tuple[dict | None, dict]:
    """A step's scored columns as (reward components, molecule properties recorded once per molecule)."""
    if not components:
        return components, {}
    properties = {
        k[len(PROPERTY_PREFIX) :]: v for k, v in components.items() if k.startswith(PROPERTY_PREFIX)
    }
    return {k: v for k, v in components.items() if not k.startswith(PROPERTY_PREFIX)}, properties


def _format_metrics(step: int, steps: int, trajectories: int, metrics: dict[str, float]) -> str:
    first = ["loss", "log_z", "reward_mean", "reward_max", "traj_per_s"]
    names = [k for k in first if k in metrics] + sorted(k for k in metrics if k not in first)
    parts = [f"step {step}/{steps}", f"traj {trajectories}"] + [f"{k} {metrics[k]:.4g}" for k in names]
    return " | ".join(parts)


@dataclass
class _OracleCounts:
    """Expensive-oracle calls of a run so far (from the steps' ``<name>_calls``/``_cached``)."""

    calls: int = 0
    cached: int = 0
    in_flight: int = 0
    seen: bool = False

    @classmethod
    def of(cls, store: RunStore) -> _OracleCounts:
        try:
            counts = store.oracle_counts()
        except MolgfnError:  # a new run has no metrics database yet
            counts = None
        return cls() if counts is None else cls(calls=counts[0], cached=counts[1], seen=True)

    def add(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            if key.endswith("_calls") and math.isfinite(value):
                self.calls += int(value)
                self.seen = True
            elif key.endswith("_cached") and math.isfinite(value):
                self.cached += int(value)
                self.seen = True

    def postfix(self) -> dict[str, str]:
        return {"oracle": f"{self.calls} paid/{self.cached} cached"} if self.seen else {}


def _ray_description() -> str:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = sum(int(n.get("Resources", {}).get("CPU", 0)) for n in nodes)
    where = ", ".join(sorted(n["NodeManagerAddress"] for n in nodes))
    return f"{len(nodes)} node(s), {cpus} CPU(s): {where}"


def _format_nodes(nodes: dict[str, int]) -> str:
    return ", ".join(f"{node} {n} molecules" for node, n in sorted(nodes.items()))
