"""``molgfn train`` and ``molgfn runs``: start, resume and list training runs."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

from molgfn.config import apply_overrides, config_from_dict, load_config, read_toml
from molgfn.errors import MolgfnError
from molgfn.training.protocol import DEFAULT_ALGORITHM
from molgfn.training.runs import RunStore, list_runs, validate_run_id

# molgfn.training.trainer (and torch) are imported by the train command only: `molgfn runs` stays fast


# fields a resumed run may change: how long it trains and how it reports, never what it learns
RESUMABLE_OVERRIDES = (
    "train.steps",
    "train.checkpoint_every",
    "train.metrics_every",
    "run.threads",
    "run.workers",
    "run.device",
    "run.backend",
    "run.ray_address",
    "run.ray_actors",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a GFlowNet (a new run, or --resume one)",
        description="Train a GFlowNet from a run config (TOML; see configs/default.toml). Prints the run "
        "folder, then trains with a progress bar, writing metrics, molecules and checkpoints to it. "
        "Ctrl-C (or SIGTERM) stops after the current step with a checkpoint; --resume continues.",
    )
    train.add_argument("--config", type=Path, help="run config file (default: the built-in defaults)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.steps=500 (TOML value syntax; repeatable)",
    )
    train.add_argument(
        "--resume", metavar="RUN", help="resume run RUN (an id under the runs folder, or a path)"
    )
    train.add_argument(
        "--restart",
        action="store_true",
        help="with --resume: when the run has no intact checkpoint, train it again from step 0 "
        "(deletes its stored steps); without it such a resume is refused",
    )
    train.add_argument("--run-id", help="id of the new run (default: <run.name>-<UTC time>)")
    train.add_argument(
        "--steps", type=int, help="train.steps; on --resume, extends the run to this many steps"
    )
    train.add_argument(
        "--runs-dir", type=Path, help="folder of the runs (default: run.runs_dir of the config)"
    )
    train.add_argument(
        "--algorithm",
        metavar="MODULE:FUNCTION",
        help=f"factory building the algorithm from the config (default {DEFAULT_ALGORITHM})",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    runs = sub.add_parser("runs", help="list training runs", description="List the runs in a runs folder.")
    runs.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="folder of the runs (default: runs)"
    )
    runs.set_defaults(func=_runs)


def _train(args: argparse.Namespace) -> int:
    from molgfn.training.trainer import Trainer, TrainingFailed, build_seeded

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    progress = False if args.no_progress else None
    if args.restart and not args.resume:
        raise MolgfnError("--restart: only with --resume RUN")
    if args.resume:
        if args.config is not None or args.run_id is not None:
            raise MolgfnError("--resume: takes the run's own config; do not give --config or --run-id")
        store = RunStore.open(args.resume, args.runs_dir or "runs")
        current = store.status()
        if current["status"] == "running":
            raise MolgfnError(
                f"--resume {args.resume}: the run is still training (pid {current.get('pid')} on "
                f"{current.get('host')}); stop it first (Ctrl-C or kill -TERM {current.get('pid')})"
            )
        store.check_writable()
        cfg = _resumed_config(store, overrides)
        factory = args.algorithm or store.meta().get("algorithm") or DEFAULT_ALGORITHM
        trainer = Trainer(cfg, store, build_seeded(cfg, factory), progress=progress)
    else:
        cfg = load_config(args.config, overrides)
        if args.runs_dir is not None:
            cfg = replace(cfg, run=replace(cfg.run, runs_dir=str(args.runs_dir)))
        if args.run_id is not None:  # fail before the (slow) algorithm is built
            validate_run_id(args.run_id)
            if (Path(cfg.run.runs_dir) / args.run_id).exists():
                raise MolgfnError(f"--run-id {args.run_id}: {Path(cfg.run.runs_dir) / args.run_id} exists")
        factory = args.algorithm or DEFAULT_ALGORITHM
        algorithm = build_seeded(cfg, factory)  # before the run folder: a failed build leaves none
        store = RunStore.create(cfg, run_id=args.run_id)
        store.set_meta("algorithm", factory)
        trainer = Trainer(cfg, store, algorithm, progress=progress)
    print(store.path, flush=True)
    try:
        status = trainer.run(resume=bool(args.resume), restart=args.restart)
    except TrainingFailed as exc:
        print(f"molgfn: error: {exc}", file=sys.stderr)
        return 1
    print(f"molgfn: run {store.id} {status} at step {trainer.step}", file=sys.stderr)
    return 3 if trainer.backend_lost else 0  # 3: stopped because the Ray cluster went away


def _resumed_config(store: RunStore, overrides: list[str]):
    data = read_toml(store.config_path)
    changed = apply_overrides(data, overrides)
    for key in changed:
        if key not in RESUMABLE_OVERRIDES:
            raise MolgfnError(
                f"--set {key}: cannot be changed on --resume (allowed: {', '.join(RESUMABLE_OVERRIDES)})"
            )
    base = store.config().base_dir
    cfg = config_from_dict(data, source=str(store.config_path), base_dir=base, _overridden=changed)
    if changed:
        store.write_config(cfg)
    return cfg


def _runs(args: argparse.Namespace) -> int:
    frame = list_runs(args.runs_dir)
    if frame.empty:
        print(f"no runs in {args.runs_dir}")
        return 0
    rows = [("id", "status", "step/steps", "trajectories", "best reward", "objective", "started", "note")]

    def count(value) -> str:
        return "?" if value is None or value != value else str(int(value))  # None or NaN: unknown

    for r in frame.itertuples(index=False):
        best = "-" if r.best_reward is None or math.isnan(r.best_reward) else f"{r.best_reward:.3f}"
        rows.append(
            (
                r.id,
                r.status,
                f"{count(r.step)}/{count(r.steps)}",
                count(r.trajectories),
                best,
                str(r.objective or "?"),
                str(r.started or "-"),
                str(r.message) if r.status == "damaged" else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
