"""Compare GFlowNet training objectives on the default proxy reward at the same trajectory budget.

    python benchmarks/compare_objectives.py --trajectories 30000 --seeds 0 1 2 --jobs 2 --out bench-out/objectives

Each objective variant is trained from the default config (``configs/default.toml`` unless --config) for
``--trajectories`` trajectories per seed, one process per run, one torch thread each. During training the
discovery curves are recorded against trajectories sampled: number of modes found (reward score ≥
train.mode_threshold, Tanimoto < 0.7 to earlier modes), mean reward of the 100 best unique molecules so
far, IntDiv (MOSES) of the 1,000 best so far, and wall time. Written to --out: one CSV per run, ``curves.csv``
(all runs), ``summary.md`` (mean ± standard deviation over seeds at the full budget) and ``curves.html``
(plotly, self-contained).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

# name -> config overrides (the objective and its options)
VARIANTS: dict[str, list[str]] = {
    "tb": ["objective.name=tb"],
    "db": ["objective.name=db"],
    "subtb": ["objective.name=subtb"],
    "fldb": ["objective.name=fldb"],
    "rlgfn": ["objective.name=rlgfn", "train.epsilon=0.0"],
    "rlgfn-coupled": [
        "objective.name=rlgfn",
        "objective.coupled_backward=true",
        "model.learned_backward=true",
        "train.epsilon=0.0",
    ],
    "rlgfn-trpo": ["objective.name=rlgfn", "objective.trpo=true", "train.epsilon=0.0"],
    "entppo": ["objective.name=entppo", "train.epsilon=0.0"],
    # Ent-PPO's update spelled out: a separate value network and 4 epochs x 4 minibatches (the setting
    # of the wave-1 comparison), against the value head on the policy's trunk with fewer epochs
    "entppo-separate-4x4": [
        "objective.name=entppo",
        "objective.ppo_value_head=separate",
        "objective.ppo_epochs=4",
        "objective.ppo_minibatches=4",
        "train.epsilon=0.0",
    ],
    "entppo-shared-2x4": [
        "objective.name=entppo",
        "objective.ppo_value_head=shared",
        "objective.ppo_epochs=2",
        "objective.ppo_minibatches=4",
        "train.epsilon=0.0",
    ],
    # the cheaper candidates of issue 15: width 64, value head on the trunk, 4 epochs x 2 minibatches
    "entppo-h64-shared-4x2": [
        "objective.name=entppo",
        "model.hidden=64",
        "objective.ppo_value_head=shared",
        "objective.ppo_epochs=4",
        "objective.ppo_minibatches=2",
        "train.epsilon=0.0",
    ],
    "entppo-shared-4x4": [
        "objective.name=entppo",
        "objective.ppo_value_head=shared",
        "objective.ppo_epochs=4",
        "objective.ppo_minibatches=4",
        "train.epsilon=0.0",
    ],
    "entppo-h64-separate-4x4": [
        "objective.name=entppo",
        "model.hidden=64",
        "objective.ppo_value_head=separate",
        "objective.ppo_epochs=4",
        "objective.ppo_minibatches=4",
        "train.epsilon=0.0",
    ],
    "entppo-h64-shared-4x2-lr2e-3": [
        "objective.name=entppo",
        "model.hidden=64",
        "objective.ppo_value_head=shared",
        "objective.ppo_epochs=4",
        "objective.ppo_minibatches=2",
        "train.lr=0.002",
        "train.epsilon=0.0",
    ],
}
DEFAULT_VARIANTS = ["tb", "db", "subtb", "fldb", "rlgfn", "rlgfn-coupled", "entppo"]


def run_one(
    variant: str, seed: int, trajectories: int, config: str | None, extra: list[str], every: int, out: str
) -> str:
    import pandas as pd
    import torch

    torch.set_num_threads(1)
    from molgfn.config import load_config
    from molgfn.training.algorithm import build_algorithm

    cfg = load_config(config, [*VARIANTS[variant], f"run.seed={seed}", "run.threads=1", *extra])
    steps = -(-trajectories // cfg.train.batch_size)
    cfg_steps = load_config(
        config, [*VARIANTS[variant], f"run.seed={seed}", "run.threads=1", f"train.steps={steps}", *extra]
    )
    gfn = build_algorithm(cfg_steps)
    rows = []
    path = Path(out) / f"{variant}-seed{seed}.csv"
    start = time.perf_counter()
    for step in range(steps):
        m = gfn.train_step(step + 1).metrics
        if (step + 1) % (every * 8) == 0:
            print(
                f"  {variant} seed {seed}: step {step + 1}/{steps} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        if (step + 1) % every == 0 or step + 1 == steps:
            rows.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "step": step + 1,
                    "trajectories": gfn.trajectories_seen,
                    "wall_s": time.perf_counter() - start,
                    "modes": gfn.tracker.modes,
                    "top100_reward": gfn.tracker.top_k(100),
                    "intdiv_top1000": gfn.tracker.diversity_of_top(1000),
                    "unique": gfn.tracker.unique,
                    "reward_mean": m["reward_mean"],
                    "loss": m.get("loss", float("nan")),
                    "log_z": m.get("log_z", float("nan")),
                }
            )
            pd.DataFrame(rows).to_csv(path, index=False)  # as it goes: a stopped run keeps its curve
    return str(path)


def summarise(frame, budget: int) -> str:
    final = frame.sort_values("trajectories").groupby(["variant", "seed"]).tail(1)
    lines = [
        "| objective | modes (≥ threshold) | top-100 mean reward | IntDiv of top 1,000 | unique molecules "
        "| wall time (s) | modes per 1,000 s |",
        "|---|---|---|---|---|---|---|",
    ]
    order = [v for v in VARIANTS if v in set(final["variant"])]

    def cell(values, fmt):
        values = list(values)
        if len(values) == 1:
            return fmt.format(values[0])
        return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"

    for v in order:
        g = final[final["variant"] == v]
        lines.append(
            f"| {v} | {cell(g['modes'], '{:.0f}')} | {cell(g['top100_reward'], '{:.3f}')} | "
            f"{cell(g['intdiv_top1000'], '{:.3f}')} | {cell(g['unique'], '{:.0f}')} | {cell(g['wall_s'], '{:.0f}')} | "
            f"{cell(1000 * g['modes'] / g['wall_s'], '{:.0f}')} |"
        )
    seeds = sorted(set(final["seed"]))
    return (
        f"{budget:,} trajectories per run, seeds {', '.join(map(str, seeds))} (mean ± sd over seeds):\n\n"
        + "\n".join(lines)
    )


def plot(frame, path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = ["modes", "top100_reward", "intdiv_top1000", "wall_s"]
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=["modes found", "top-100 mean reward", "IntDiv of top 1,000", "wall time (s)"],
    )
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    for i, variant in enumerate(v for v in VARIANTS if v in set(frame["variant"])):
        g = frame[frame["variant"] == variant].groupby("trajectories")[metrics].mean().reset_index()
        for j, metric in enumerate(metrics):
            fig.add_trace(
                go.Scatter(
                    x=g["trajectories"],
                    y=g[metric],
                    name=variant,
                    legendgroup=variant,
                    showlegend=j == 0,
                    line={"color": colours[i % len(colours)]},
                ),
                row=j // 2 + 1,
                col=j % 2 + 1,
            )
    fig.update_xaxes(title_text="trajectories sampled")
    fig.update_layout(
        height=800, width=1100, title="GFlowNet objectives on the default proxy reward (mean over seeds)"
    )
    fig.write_html(path, include_plotlyjs=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trajectories", type=int, default=30000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--objectives", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    parser.add_argument("--config", default=None, help="base run config (default: the built-in defaults)")
    parser.add_argument("--set", dest="extra", action="append", default=[], help="extra config overrides")
    parser.add_argument(
        "--proxy",
        default=None,
        help="the activity proxy: a shipped name (default, drd3, htr1a) or a file; replaces the path of "
        "the config's proxy component",
    )
    parser.add_argument("--every", type=int, default=25, help="steps between curve points")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one core each)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/objectives"))
    parser.add_argument(
        "--summarise-only", action="store_true", help="rebuild the table and plot from the run CSVs in --out"
    )
    args = parser.parse_args()

    import pandas as pd

    if args.summarise_only:
        paths = sorted(str(p) for p in args.out.glob("*-seed*.csv"))
        if not paths:
            parser.error(f"no run CSVs (VARIANT-seedN.csv) in {args.out}")
        write_outputs(pd.concat([pd.read_csv(p) for p in paths]), args.out, args.trajectories)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.proxy is not None:
        args.config = str(with_proxy(args.config, args.proxy, args.out))
    jobs = [(v, s) for s in args.seeds for v in args.objectives]
    print(
        f"{len(jobs)} runs of {args.trajectories} trajectories, {args.jobs} at a time -> {args.out}",
        flush=True,
    )
    paths = []
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            pool.submit(
                run_one, v, s, args.trajectories, args.config, args.extra, args.every, str(args.out)
            ): (v, s)
            for v, s in jobs
        }
        for future in as_completed(futures):
            v, s = futures[future]
            paths.append(future.result())
            print(f"  done {v} seed {s} ({time.perf_counter() - started:.0f} s elapsed)", flush=True)
    write_outputs(pd.concat([pd.read_csv(p) for p in sorted(paths)]), args.out, args.trajectories)
    return 0


def with_proxy(config: str | None, proxy: str, out: Path) -> Path:
    """A copy of the run config (default: the shipped one) whose proxy components use ``proxy``."""
    import tomli_w
    import tomllib

    from molgfn.resources import CONFIGS, PROXIES, resolve

    source = resolve(config or "default", CONFIGS)
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    path = PROXIES.get(proxy) or Path(proxy).resolve()
    hits = 0
    for component in data.get("reward", {}).get("components", []):
        if component.get("kind") == "proxy":
            component["path"] = str(path)
            hits += 1
    if not hits:
        raise SystemExit(f"{source}: no proxy component to point at {proxy}")
    for component in data.get("reward", {}).get("components", []):  # other relative paths: absolute
        for key, value in component.items():
            if key in ("path", "reference") and isinstance(value, str) and not Path(value).is_absolute():
                component[key] = str((source.parent / value).resolve())
    if isinstance(data.get("env", {}).get("vocab"), str) and data["env"]["vocab"].endswith(".txt"):
        data["env"]["vocab"] = str((source.parent / data["env"]["vocab"]).resolve())
    target = out / f"config-{Path(str(proxy)).stem}.toml"
    target.write_text(tomli_w.dumps(data), encoding="utf-8")
    return target


def write_outputs(frame, out: Path, budget: int) -> None:
    frame.to_csv(out / "curves.csv", index=False)
    table = summarise(frame, budget)
    (out / "summary.md").write_text(table + "\n", encoding="utf-8")
    try:
        plot(frame, out / "curves.html")
    except ImportError as exc:  # plotly is a dependency of molgfn, but a bare machine may lack it
        print(f"no plot ({exc})")
    print(table)


if __name__ == "__main__":
    sys.exit(main())
