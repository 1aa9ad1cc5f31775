"""Progress of a run as the dashboard shows it: steps done, rate, time left."""

from __future__ import annotations

import math
from dataclasses import dataclass

from molgfn.errors import MolgfnError
from molgfn.training.runs import RunStore


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    trajectories: int
    traj_per_s: float | None
    eta_s: float | None
    oracle_paid: int | None = None
    """Expensive-oracle calls so far (None: the reward has no expensive component)."""
    oracle_cached: int | None = None
    oracle_in_flight: int | None = None
    """Molecules being scored on Ray actors at the last report of a running run."""

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
    try:
        oracle = store.oracle_counts()
    except MolgfnError:
        oracle = None
    in_flight = status.get("oracle_in_flight") if status.get("status") == "running" else None
    return Progress(
        step,
        steps,
        traj,
        rate,
        eta,
        oracle_paid=None if oracle is None else oracle[0],
        oracle_cached=None if oracle is None else oracle[1],
        oracle_in_flight=int(in_flight) if isinstance(in_flight, int | float) else None,
    )


def format_oracle(progress: Progress) -> str:
    """'oracle: 120 paid · 4 in flight · 36 cached', or '' when the run has no expensive component."""
    if progress.oracle_paid is None and progress.oracle_in_flight is None:
        return ""
    parts = [f"{progress.oracle_paid or 0} paid"]
    if progress.oracle_in_flight is not None:
        parts.append(f"{progress.oracle_in_flight} in flight")
    parts.append(f"{progress.oracle_cached or 0} cached")
    return "oracle: " + " · ".join(parts)


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
