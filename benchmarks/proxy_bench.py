"""Benchmark the shipped proxy: molecules scored per second, and training time on its target.

Scoring is timed end to end (SMILES parsing, featurisation, model) on batches of 64 and 1,024
distinct molecules from a shipped target, median over repeats. The machine may be shared: the load
average and process CPU time are printed beside wall-clock time so noisy numbers can be recognised.

    python benchmarks/proxy_bench.py [--threads 1] [--repeats 7] [--no-train]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmark this checkout, not another installed molgfn


def score_rate(proxy, smiles: list[str], batch: int, repeats: int) -> tuple[float, float, float]:
    """Median and best molecules per wall-clock second, and median molecules per CPU second (less
    sensitive to other processes on a shared machine), over ``repeats`` calls on different slices."""
    rates, cpu_rates = [], []
    for r in range(repeats):
        start = (r * batch) % max(1, len(smiles) - batch)
        chunk = smiles[start : start + batch]
        t0, c0 = time.perf_counter(), time.process_time()
        proxy.predict(chunk)
        rates.append(len(chunk) / (time.perf_counter() - t0))
        cpu_rates.append(len(chunk) / max(time.process_time() - c0, 1e-9))
    return statistics.median(rates), max(rates), statistics.median(cpu_rates)


def main() -> None:
    from molgfn.proxy import DEFAULT_PROXY, Proxy, load_assay_table, train_proxy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", type=Path, default=DEFAULT_PROXY, help="proxy file (default: shipped)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per batch size (default: 7)")
    parser.add_argument("--molecules", default="data/targets/CHEMBL233_Ki.csv", help="SMILES source table")
    parser.add_argument("--no-train", action="store_true", help="skip the training-time measurement")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    proxy = Proxy.load(args.proxy)
    smiles = pd.read_csv(REPO / args.molecules)["smiles"].tolist()
    print(
        f"proxy: {args.proxy.name} ({proxy.family}, {proxy.n_members} members, target {proxy.metadata.get('data_file')})"
    )
    print(
        f"torch threads: {torch.get_num_threads()}; CPU cores: {os.cpu_count()}; load average: {os.getloadavg()}"
    )
    proxy.predict(smiles[:64])  # warm-up
    print("| batch | median mol/s (wall) | best mol/s (wall) | median mol per CPU-s |\n|---|---|---|---|")
    for batch in (64, 1024):
        median, best, cpu = score_rate(proxy, smiles, batch, args.repeats)
        print(f"| {batch} | {median:,.0f} | {best:,.0f} | {cpu:,.0f} |")

    if not args.no_train:
        meta = proxy.metadata
        data = REPO / "data/targets" / meta["data_file"]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        table, report = load_assay_table(
            data, meta.get("smiles_col"), meta.get("label_col"), meta.get("units")
        )
        load_wall = time.perf_counter() - wall0
        _, metrics = train_proxy(
            table, model=meta["model_requested"], split=meta["split"]["kind"], seed=meta["split"]["seed"],
            ensemble=3, progress=False, report=report,
        )  # fmt: skip
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        per_family = ", ".join(f"{f} {e['seconds']:.0f} s" for f, e in metrics["families"].items())
        print(
            f"training on {data.name} ({len(table)} molecules, --model {meta['model_requested']}): "
            f"{wall:.0f} s wall ({load_wall:.0f} s loading; {per_family}), {cpu:.0f} s CPU; "
            f"load average after: {os.getloadavg()}"
        )


if __name__ == "__main__":
    main()
