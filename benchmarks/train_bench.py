"""Training throughput of the default config: trajectories per second including sampling, reward and update.

    python benchmarks/train_bench.py [--config configs/default.toml] [--steps 20] [--repeats 5]
                                     [--threads 1] [--device cpu|cuda] [--set key=value ...]

Prints the median over repeats of the per-step wall time (after warm-up steps), trajectories per second,
the share of sampling time, and the peak resident memory of the process. torch runs with --threads threads
(default 1: steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    import torch

    from molgfn.config import load_config
    from molgfn.training.algorithm import build_algorithm

    overrides = [
        f"run.threads={args.threads}",
        f"run.device={args.device!r}".replace("'", '"'),
        *args.overrides,
    ]
    cfg = load_config(args.config, overrides)
    torch.set_num_threads(args.threads)
    gfn = build_algorithm(cfg)
    for step in range(args.warmup):
        gfn.train_step(step)
    per_step, sample_share, reward_first, reward_last = [], [], None, None
    step = args.warmup
    for _ in range(args.repeats):
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            out = gfn.train_step(step)
            if args.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            sample_share.append(out.metrics["sample_time"] / times[-1])
            reward_first = reward_first if reward_first is not None else out.metrics["reward_mean"]
            reward_last = out.metrics["reward_mean"]
            step += 1
        per_step.append(statistics.median(times))
    median = statistics.median(per_step)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {args.threads} torch thread(s), device {args.device}"
    )
    print(
        f"config: {args.config or 'built-in defaults'}; objective {cfg.objective.name}; batch {cfg.train.batch_size}; "
        f"width {cfg.model.hidden}; layers {cfg.model.layers}; max fragments {cfg.env.max_frags}"
    )
    print(
        f"step time (median of {args.repeats} repeats x {args.steps} steps): {median * 1e3:.0f} ms "
        f"[repeats: {', '.join(f'{t * 1e3:.0f}' for t in per_step)}]"
    )
    print(
        f"throughput: {cfg.train.batch_size / median:.0f} trajectories/s (sampling {100 * statistics.median(sample_share):.0f}% of a step)"
    )
    print(f"peak memory (max RSS): {peak_mib:.0f} MiB")
    if args.device == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(f"mean reward: first timed step {reward_first:.3f}, last {reward_last:.3f}")


if __name__ == "__main__":
    sys.exit(main())
