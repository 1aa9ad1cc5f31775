"""Generation speed and the cost of the set metrics.

    python benchmarks/sample_bench.py [--model models/generator_default] [--batch 256] [--repeats 5] [--threads 1]

Prints molecules generated per second at batch 256 without the reward (sampling and assembly only) and
with it (the model's reward: proxy, QED, SA, MW), medians of several repeats, and the time of the full
set of metrics (molgfn.metrics.set_metrics: validity, uniqueness, novelty, IntDiv p=1,2, modes, #Circles,
scaffolds, top-k) on 10,000 generated molecules.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="generator (default: the shipped one)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--metrics-n", type=int, default=10000)
    args = parser.parse_args()

    import numpy as np
    import torch

    from molgfn.generate import DEFAULT_GENERATOR, load_generator
    from molgfn.metrics import set_metrics

    torch.set_num_threads(args.threads)
    gen = load_generator(args.model or DEFAULT_GENERATOR)
    sampler, beta = gen.gfn.sampler, gen.cfg.train.beta_max
    rng = np.random.default_rng(0)
    sampler.sample(np.full(args.batch, beta), rng, score=False)  # warm-up

    def rate(score: bool) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            sampler.sample(np.full(args.batch, beta), rng, score=score)
            times.append(time.perf_counter() - start)
        return args.batch / statistics.median(times)

    no_reward, with_reward = rate(False), rate(True)
    smiles, rewards = [], []
    while len(smiles) < args.metrics_n:
        trajs = sampler.sample(np.full(args.batch, beta), rng)
        smiles += trajs.smiles
        rewards += list(trajs.score)
    smiles, rewards = smiles[: args.metrics_n], rewards[: args.metrics_n]
    reference = list(gen.proxy.train_smiles) if gen.proxy is not None else ()
    start = time.perf_counter()
    metrics = set_metrics(smiles, rewards, reference=reference, mode_threshold=gen.cfg.train.mode_threshold)
    metric_time = time.perf_counter() - start
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {args.threads} torch thread(s); model {gen.source}"
    )
    print(f"generation, batch {args.batch}, beta {beta:g} (median of {args.repeats}):")
    print(f"  without reward: {no_reward:.0f} molecules/s")
    print(f"  with reward:    {with_reward:.0f} molecules/s")
    print(
        f"full metric set on {len(smiles)} molecules ({int(metrics['uniqueness'] * len(smiles))} unique): {metric_time:.1f} s"
    )


if __name__ == "__main__":
    main()
