"""Speed of the batched fragment environment (DESIGN.md §2, "Speed").

Run from the repository root::

    python benchmarks/env_bench.py            # default vocabulary, batch 256, at most 9 fragments

Measures, as medians over ``--repeats`` runs on one core (wall-clock, and in brackets CPU time of this
process, which is the figure to trust on a shared machine; the targets are judged on it):

- transitions per second of uniform random rollouts (``FragmentEnv.random_rollout``: masks, sampling,
  ``step``), target >= 20,000/s;
- molecules assembled per second (``FragmentEnv.smiles``: arrays -> Tree -> RDKit molzip -> canonical
  SMILES), target >= 2,000/s;
- microseconds per terminal tree for ``log_symmetry_weight`` (on the training hot path), ``canonical_key``
  and the array -> ``Tree`` conversion they both start from.

numpy is pinned to one thread (OMP/MKL/OPENBLAS_NUM_THREADS=1 are set before numpy is imported); RDKit
and the pure-Python tree code are single-threaded anyway.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import rdkit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from molgfn.chem.env import FragmentEnv  # noqa: E402
from molgfn.chem.tree import canonical_key, log_symmetry_weight  # noqa: E402
from molgfn.chem.vocab import load_vocabulary  # noqa: E402

TARGET_TRANSITIONS = 20_000
TARGET_MOLECULES = 2_000


class Clock:
    """Wall-clock and CPU time of this process: on a shared machine the CPU-time rate is the stable one."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def median_rate(run, repeats: int) -> tuple[float, float, list[float]]:
    """Medians of count/wall-seconds and count/CPU-seconds over repeats, and the wall rates;
    ``run()`` returns (count, Clock)."""
    wall, cpu = [], []
    for _ in range(repeats):
        count, clock = run()
        wall.append(count / clock.wall)
        cpu.append(count / max(clock.cpu, 1e-9))
    return statistics.median(wall), statistics.median(cpu), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", default="default")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--max-frags", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")

    vocab = load_vocabulary(args.vocab)
    env = FragmentEnv(vocab, max_frags=args.max_frags)
    rng = np.random.default_rng(args.seed)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, rdkit {rdkit.__version__}, "
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} logical CPUs visible"
    )
    print("numpy threads: OMP/MKL/OPENBLAS_NUM_THREADS=1 (set before importing numpy); single process")
    print(
        f"vocabulary {vocab.source}: {len(vocab)} fragments, {len(vocab.stem_table)} (fragment, stem) targets; "
        f"batch {args.batch}, at most {args.max_frags} fragments; medians of {args.repeats} repeats"
    )

    env.random_rollout(args.batch, rng)  # warm up

    def rollouts():
        transitions = 0
        with Clock() as clock:
            for _ in range(5):
                transitions += env.random_rollout(args.batch, rng)[1]
        return transitions, clock

    transitions_wall, transitions_cpu, rates = median_rate(rollouts, args.repeats)
    batches = [env.random_rollout(args.batch, rng)[0] for _ in range(args.repeats)]
    sizes = np.concatenate([b.n_nodes for b in batches])
    print(f"mean {sizes.mean():.2f} fragments per random molecule; rates as wall-clock [CPU-time] medians")
    print(
        f"random rollouts:       {transitions_wall:9,.0f} [{transitions_cpu:9,.0f}] transitions/s "
        f"(target >= {TARGET_TRANSITIONS:,}; wall range {min(rates):,.0f}..{max(rates):,.0f})"
    )

    it = iter(batches)

    def assemble():
        batch = next(it)
        with Clock() as clock:
            smiles = env.smiles(batch)
        return len(smiles), clock

    molecules_wall, molecules_cpu, rates = median_rate(assemble, args.repeats)
    print(
        f"assembly (env.smiles): {molecules_wall:9,.0f} [{molecules_cpu:9,.0f}] molecules/s   "
        f"(target >= {TARGET_MOLECULES:,}; wall range {min(rates):,.0f}..{max(rates):,.0f})"
    )

    trees = [t for b in batches for t in b.trees()]

    def microseconds(run) -> str:
        wall, cpu, _ = median_rate(run, args.repeats)
        return f"{1e6 / wall:9.1f} [{1e6 / cpu:9.1f}] us"

    def per_tree(fn):
        def run():
            with Clock() as clock:
                for t in trees:
                    fn(t)
            return len(trees), clock

        return microseconds(run)

    def to_trees():
        with Clock() as clock:
            for b in batches:
                b.trees()
        return len(trees), clock

    print(f"TreeBatch.tree(i):     {microseconds(to_trees)} per terminal tree (arrays -> Tree)")
    print(
        f"log_symmetry_weight:   {per_tree(lambda t: log_symmetry_weight(t, vocab))} per terminal tree (from a Tree)"
    )
    print(
        f"canonical_key:         {per_tree(lambda t: canonical_key(t, vocab))} per terminal tree (from a Tree)"
    )
    # The targets are for one core: judge them on CPU time, which a busy shared machine does not inflate.
    ok = transitions_cpu >= TARGET_TRANSITIONS and molecules_cpu >= TARGET_MOLECULES
    print("targets met (CPU time, one core)" if ok else "TARGETS MISSED (CPU time, one core)")
    if (
        ok
        and min(transitions_wall, molecules_wall / TARGET_MOLECULES * TARGET_TRANSITIONS) < TARGET_TRANSITIONS
    ):
        print("note: a wall-clock rate is below its target; is the machine busy? (compare with CPU time)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
