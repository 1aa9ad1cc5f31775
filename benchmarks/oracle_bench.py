"""Expensive-oracle throughput: docking molecules/s on the local backend and on Ray, and training
trajectories/s of the default config on Ray against local.

- docking: ``--molecules`` drug-like SMILES docked into the shipped sEH receptor (exhaustiveness 1),
  each run with a fresh oracle cache: local (one docking worker in this process), then Ray with 1 and 2
  actors (each actor one docking worker). Prints molecules/s and the speed-up from 1 to 2 actors.
- training: ``--steps`` steps of the default config (local: ``run.workers = 1``; Ray: an embedded Ray with
  ``run.ray_actors`` = CPUs), median trajectories/s over the steps after the first 3.

Every Ray part runs inside a network namespace with only ``lo`` (tests/netns.py; needs root and
iproute2). One torch thread; medians of ``--repeats``.

    python benchmarks/oracle_bench.py [--molecules 24] [--steps 30] [--repeats 1] [--skip-training]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

MOLECULES = [
    "O=C(NCc1ccccc1)Nc1ccc(Cl)cc1",
    "O=C(Nc1ccc(OC(F)(F)F)cc1)NC1CCN(C(=O)CC)CC1",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "CC(=O)Oc1ccccc1C(=O)O",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "O=C(NC1CCCCC1)Nc1ccccc1",
    "CN1CCN(c2ccc(NC(=O)c3ccccc3)cc2)CC1",
    "Cc1ccc(S(=O)(=O)Nc2ccccn2)cc1",
    "O=C(O)c1ccc(NC(=O)NC2CC2)cc1",
    "c1ccc(-c2nc3ccccc3[nH]2)cc1",
    "CC(C)NC(=O)Nc1ccc(C(F)(F)F)cc1",
    "O=C(Nc1ccccc1)c1ccc(O)cc1",
    "CCOC(=O)c1ccc(NC(=O)NCc2ccco2)cc1",
    "Cc1nc(C)c(C(=O)NC2CCCC2)s1",
    "O=C(CCc1ccccc1)NC1CCOCC1",
    "FC(F)(F)c1ccc(NC(=O)NC2CCCCC2)cc1",
    "O=C(NC1CCCCC1)NC1CCN(C(=O)C2CC2)CC1",
    "Cc1ccc(NC(=O)Nc2ccc(F)cc2)cc1",
    "O=C(Nc1ccc(Br)cc1)NC1CCCC1",
    "CC(C)(C)c1ccc(C(=O)NCc2ccccn2)cc1",
    "O=C(NCc1ccc(F)cc1)c1ccc2c(c1)OCO2",
    "CN(C)C(=O)c1ccc(NC(=O)NC2CCCCC2)cc1",
    "O=C(Nc1cccc(Cl)c1)NC1CC1",
    "COc1ccc(CNC(=O)Nc2ccccc2)cc1",
]


def dock_config(cache: Path) -> str:
    receptor = REPO / "data" / "receptors" / "sEH_4jnc"
    return (
        f'[reward]\noracle_cache = "{cache}"\n[[reward.components]]\nkind = "docking"\n'
        f'receptor = "{receptor / "4jnc_receptor.pdbqt"}"\nbox_from = "{receptor / "4jnc_ligand.pdb"}"\n'
        "exhaustiveness = 1\nworkers = 1\n"
    )


def inner_dock(backend: str, actors: int, n: int) -> float:
    """Molecules/s of one docking pass with a fresh cache (run in the namespace for Ray)."""
    import functools

    from molgfn.reward import Reward

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "dock.toml"
        config.write_text(dock_config(Path(tmp) / "oracle.sqlite"))
        if n > len(MOLECULES):
            raise SystemExit(f"--molecules: at most {len(MOLECULES)} (distinct molecules, none cached)")
        smiles = MOLECULES[:n]
        if backend == "local":
            reward = Reward.from_toml(config)
            reward.score(smiles[:1])  # receptor maps and the first molecule, as each Ray actor warms up
            smiles = smiles[1:]
            start = time.perf_counter()
            reward.score(smiles)
            return len(smiles) / (time.perf_counter() - start)
        from molgfn.reward.remote import RemoteScorer

        scorer = RemoteScorer(functools.partial(Reward.from_toml, config), actors=actors)
        scorer.score(smiles[:actors])  # each actor: maps and one molecule
        smiles = smiles[actors:]
        start = time.perf_counter()
        scorer.score(smiles)
        rate = len(smiles) / (time.perf_counter() - start)
        scorer.close()
        return rate


def train_rate(argv_prefix: list[str], sets: list[str], steps: int, env: dict | None = None) -> float:
    from molgfn.training.runs import RunStore

    with tempfile.TemporaryDirectory() as tmp:
        argv = [*argv_prefix, sys.executable, "-m", "molgfn", "train", "--steps", str(steps)]
        argv += ["--runs-dir", tmp, "--no-progress", "--set", "run.threads=1"]
        argv += [a for s in sets for a in ("--set", s)]
        done = subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        (folder,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        rates = RunStore.open(folder).read_steps(["traj_per_s"])["traj_per_s"].tolist()[3:]
        return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=24)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-docking", action="store_true")
    parser.add_argument("--inner", nargs=2, metavar=("BACKEND", "ACTORS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner_dock(args.inner[0], int(args.inner[1]), args.molecules)))
        return

    import netns

    reason = netns.ray_unavailable()
    if reason:
        raise SystemExit(f"oracle_bench: {reason}")
    print(f"oracle_bench: {os.cpu_count()} CPUs, 1 torch thread, medians of {args.repeats}")

    def run_inner(ns, backend: str, actors: int) -> float:
        cmd = [sys.executable, __file__, "--inner", backend, str(actors), "--molecules", str(args.molecules)]
        done = (
            ns.run(cmd, cwd=REPO, timeout=1200) if ns else subprocess.run(cmd, capture_output=True, text=True)
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        return float(done.stdout.strip().splitlines()[-1])

    if not args.skip_docking:
        local = statistics.median(run_inner(None, "local", 1) for _ in range(args.repeats))
        with netns.loopback() as ns:
            one = statistics.median(run_inner(ns, "ray", 1) for _ in range(args.repeats))
            two = statistics.median(run_inner(ns, "ray", 2) for _ in range(args.repeats))
        print(f"docking (sEH, exhaustiveness 1, {args.molecules} molecules, fresh cache):")
        print(f"  local, 1 worker   {local:.3f} mol/s")
        print(f"  ray, 1 actor      {one:.3f} mol/s")
        print(f"  ray, 2 actors     {two:.3f} mol/s   speed-up 1 -> 2 actors: {two / one:.2f}x")
    if not args.skip_training:
        local = statistics.median(train_rate([], ["run.workers=1"], args.steps) for _ in range(args.repeats))
        with netns.loopback() as ns:
            prefix = ["ip", "netns", "exec", ns.name]
            ray = statistics.median(
                train_rate(prefix, ["run.backend=ray"], args.steps, ns.env) for _ in range(args.repeats)
            )
        print(f"training, default config, {args.steps} steps (median traj/s of steps 4..):")
        print(f"  local (run.workers = 1)      {local:.1f} traj/s")
        print(f"  ray (one actor per CPU)      {ray:.1f} traj/s   ratio {ray / local:.2f}x")


if __name__ == "__main__":
    main()
