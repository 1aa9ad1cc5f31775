"""Where a training step's time goes, phase by phase (the table of docs/performance.md).

    python benchmarks/profile_step.py [--config configs/default.toml] [--steps 10] [--repeats 3]
                                      [--threads 1] [--device cpu|cuda] [--set key=value ...]

Phases (exclusive wall time: a phase nested in another is not counted twice):

- rollout: network   the policy's forward passes and action draws while rolling out trajectories;
- rollout: other     the environment's transitions and bookkeeping of the rollout;
- scoring            assembling the finished molecules and scoring them (what the step waits for);
- old-policy pass    the objective's no-grad pass over the batch before its update (log π_old, values);
- value passes       critic / value-head forward passes outside the policy's forward;
- update: forward    the policy's forward passes during the update;
- update: backward   ``backward()`` calls;
- optimiser          optimiser steps;
- other              the rest of the step (losses, advantages, metrics).

Prints the median over repeats of the per-step milliseconds of each phase, its share of the step, and
the trajectories per second. One torch thread by default (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = [
    "rollout: network",
    "rollout: other",
    "scoring",
    "old-policy pass",
    "value passes",
    "update: forward",
    "update: backward",
    "optimiser",
    "other",
]


class Phases:
    """Exclusive wall time per phase: entering a phase pauses the one it is nested in."""

    def __init__(self, sync) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.stack: list[list] = []  # [name, start of the current slice]
        self.sync = sync

    @contextmanager
    def phase(self, name: str):
        self.sync()
        now = time.perf_counter()
        if self.stack:
            parent = self.stack[-1]
            self.totals[parent[0]] += now - parent[1]
        self.stack.append([name, now])
        try:
            yield
        finally:
            self.sync()
            now = time.perf_counter()
            done = self.stack.pop()
            self.totals[done[0]] += now - done[1]
            if self.stack:
                self.stack[-1][1] = now


def instrument(phases: Phases) -> None:
    """Wrap the functions that make up a step, at class or module level."""
    import torch

    from molgfn.nn.policy import FragmentPolicy
    from molgfn.objectives import entppo, pg, rlgfn
    from molgfn.sampling import sampler as sampler_mod

    def wrap(owner, attr: str, name_of):
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            name = name_of(*args, **kwargs)
            if name is None:
                return original(*args, **kwargs)
            with phases.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attr, wrapped)

    in_rollout = {"on": False}

    original_start = sampler_mod.Sampler.start

    def start(self, *args, **kwargs):
        in_rollout["on"] = True
        try:
            with phases.phase("rollout: other"):
                return original_start(self, *args, **kwargs)
        finally:
            in_rollout["on"] = False

    sampler_mod.Sampler.start = start
    wrap(sampler_mod.PendingSample, "finish", lambda *a, **k: "scoring")

    def forward_name(self, batch, beta, sampling=False):
        if in_rollout["on"]:
            return "rollout: network"
        if self._profile_role == "critic":
            return "value passes"
        return "update: forward" if torch.is_grad_enabled() else "old-policy pass"

    FragmentPolicy._profile_role = "policy"
    wrap(FragmentPolicy, "forward", forward_name)
    wrap(FragmentPolicy, "sample_actions", lambda *a, **k: "rollout: network" if in_rollout["on"] else None)
    wrap(FragmentPolicy, "state_value", lambda *a, **k: "value passes")

    # the no-grad pass before the update
    for module in (entppo, rlgfn):
        if hasattr(module, "evaluate"):
            original_eval = module.evaluate

            def evaluate(*args, _original=original_eval, **kwargs):
                name = "old-policy pass" if not torch.is_grad_enabled() else "update: forward"
                with phases.phase(name):
                    return _original(*args, **kwargs)

            module.evaluate = evaluate

    original_critic = pg.make_critic

    def make_critic(policy):
        critic = original_critic(policy)
        critic._profile_role = "critic"
        return critic

    pg.make_critic = make_critic
    for module in (entppo, rlgfn):
        if hasattr(module, "make_critic"):
            module.make_critic = make_critic
    wrap(torch.Tensor, "backward", lambda *a, **k: "update: backward")
    for cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
        wrap(cls, "step", lambda *a, **k: "optimiser")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    phases = Phases(sync)
    instrument(phases)
    from molgfn.config import load_config
    from molgfn.training.algorithm import build_algorithm

    overrides = [f"run.threads={args.threads}", f'run.device="{args.device}"', *args.overrides]
    cfg = load_config(args.config, overrides)
    gfn = build_algorithm(cfg)
    for step in range(1, args.warmup + 1):
        gfn.train_step(step)
    step = args.warmup + 1
    per_repeat: list[dict[str, float]] = []
    for _ in range(args.repeats):
        phases.totals.clear()
        begin = time.perf_counter()
        for _ in range(args.steps):
            with phases.phase("other"):
                gfn.train_step(step)
            step += 1
        wall = time.perf_counter() - begin
        row = {name: 1e3 * phases.totals.get(name, 0.0) / args.steps for name in PHASES}
        row["step"] = 1e3 * wall / args.steps
        per_repeat.append(row)
    gfn.close()
    median = {k: statistics.median(r[k] for r in per_repeat) for k in per_repeat[0]}
    print(
        f"torch {torch.__version__}, {args.threads} torch thread(s), device {args.device}; objective "
        f"{cfg.objective.name}, batch {cfg.train.batch_size}, width {cfg.model.hidden}, layers {cfg.model.layers}"
        + (f"; overrides: {' '.join(args.overrides)}" if args.overrides else "")
    )
    print(f"median of {args.repeats} repeats x {args.steps} steps (after {args.warmup} warm-up steps)\n")
    print("| phase | ms per step | share |\n|---|---|---|")
    for name in PHASES:
        print(f"| {name} | {median[name]:.0f} | {100 * median[name] / median['step']:.0f} % |")
    print(
        f"| **step** | **{median['step']:.0f}** | {cfg.train.batch_size / median['step'] * 1e3:.0f} trajectories/s |"
    )


if __name__ == "__main__":
    sys.exit(main())
