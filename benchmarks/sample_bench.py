"""Generation speed and the cost of the set metrics.

    python benchmarks/sample_bench.py [--model models/generator_default] [--batch 256] [--repeats 5]
                                      [--threads 1] [--workers N] [--device cpu|cuda] [--no-metrics]

Prints molecules generated per second at batch 256 without the reward (sampling and assembly only) and
with it (the model's reward: proxy, QED, SA, MW), through the generator's stream (`molgfn sample`'s path:
each batch is split between this process and the worker processes, each rolling out, assembling and
scoring its chunk), medians of several repeats, and the time of the full
set of metrics (molgfn.chem.metrics.set_metrics: validity, uniqueness, novelty, IntDiv p=1,2, modes, #Circles,
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
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the model's run.device)")
    parser.add_argument("--no-metrics", action="store_true", help="skip the metric timing")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes beside this one (default: the model's run.workers)",
    )
    args = parser.parse_args()

    import numpy as np
    import torch

    from molgfn.candidates.generate import DEFAULT_GENERATOR, load_generator
    from molgfn.chem.metrics import set_metrics
    from molgfn.sampling.pool import ScorePool

    torch.set_num_threads(args.threads)
    gen = load_generator(args.model or DEFAULT_GENERATOR, device=args.device)
    if args.workers is not None and gen.cfg.run.device == "cpu":
        gen.close()
        gen.pool = (
            ScorePool(gen.model.vocab, gen.scorer, args.workers, policy=gen.model.policy)
            if args.workers > 0
            else None
        )
    workers = gen.pool.workers if gen.pool is not None else 0
    beta = gen.cfg.train.beta_max
    rng = np.random.default_rng(0)

    def rate(score: bool) -> float:
        """Molecules per second of Generator.stream, the path of `molgfn sample`."""
        stream = gen.stream(beta, args.batch, rng, score=score)
        next(stream), next(stream)  # warm-up, and the pipeline filled
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            next(stream)
            times.append(time.perf_counter() - start)
        stream.close()
        return args.batch / statistics.median(times)

    no_reward, with_reward = rate(False), rate(True)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {args.threads} torch thread(s); "
        f"device {gen.cfg.run.device}; model {gen.source}"
    )
    print(
        f"generation, batch {args.batch}, beta {beta:g}, {workers} worker process(es) (median of {args.repeats}):"
    )
    print(f"  without reward: {no_reward:.0f} molecules/s")
    print(f"  with reward:    {with_reward:.0f} molecules/s", flush=True)
    if args.no_metrics:
        return
    smiles, rewards = [], []
    stream = gen.stream(beta, args.batch, rng, score=True)
    while len(smiles) < args.metrics_n:
        _, mols = next(stream)
        smiles += mols.smiles
        rewards += list(mols.score)
    stream.close()
    smiles, rewards = smiles[: args.metrics_n], rewards[: args.metrics_n]
    reference = list(gen.proxy.train_smiles) if gen.proxy is not None else ()
    start = time.perf_counter()
    metrics = set_metrics(smiles, rewards, reference=reference, mode_threshold=gen.cfg.train.mode_threshold)
    metric_time = time.perf_counter() - start
    print(
        f"full metric set on {len(smiles)} molecules ({int(metrics['uniqueness'] * len(smiles))} unique): {metric_time:.1f} s"
    )


if __name__ == "__main__":
    main()
