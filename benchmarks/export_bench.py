"""Speed of the molecule table and its writers (docs/export.md, "Speed").

Run from the repository root::

    python benchmarks/export_bench.py            # 10,000 molecules against a 3,600-molecule reference

The "generated" molecules are 10,000 distinct ChEMBL molecules of the shipped target sets other than
CHEMBL234_Ki, whose ~3,650 molecules are the reference (training) set, so the nearest-neighbour search
is the realistic size. Reports wall-clock and, in brackets, this process's CPU time (the figure to trust
on a shared machine) for: ``molecule_table`` cold (first call: every descriptor computed) and warm (the
per-SMILES memo of the descriptors and the memoised reference set hit, as when the dashboard re-exports),
the parts of a cold call measured one by one, the filters on a finished table, and ``write_molecules``
to CSV, SDF and SMI.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from molgfn.candidates.export import molecule_table, write_molecules  # noqa: E402
from molgfn.candidates.filters import apply_filters, parse_filters  # noqa: E402
from molgfn.candidates.reference import ReferenceSet  # noqa: E402
from molgfn.chem.metrics import murcko  # noqa: E402
from molgfn.chem.molecules import DESCRIPTORS, MolBatch  # noqa: E402
from molgfn.reward import DEFAULT_REWARD_CONFIG, Reward  # noqa: E402
from molgfn.reward.properties import _COUNTS as COUNTS  # noqa: E402
from molgfn.reward.properties import clear_memo  # noqa: E402

DEFAULT_REWARD_CONFIG_WITHOUT_PROXY = {
    **DEFAULT_REWARD_CONFIG,
    "components": [c for c in DEFAULT_REWARD_CONFIG["components"] if c["kind"] != "proxy"],
}
TARGETS = Path(__file__).resolve().parents[1] / "data" / "targets"


class ConstantProxy:
    """Stands in for the trained proxy (its own speed is the model's business, not the table's)."""

    train_smiles: list[str] = []

    def predict(self, smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(smiles), 6.0), np.full(len(smiles), 0.5)


def timed(label: str, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    print(f"{label:<48} {time.perf_counter() - wall:7.2f} s  ({time.process_time() - cpu:6.2f} s CPU)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="generated molecules")
    parser.add_argument("--reference", default="CHEMBL234_Ki", help="target set used as the reference")
    args = parser.parse_args()

    reference = pd.read_csv(TARGETS / f"{args.reference}.csv")["smiles"].tolist()
    others = [pd.read_csv(p)["smiles"] for p in sorted(TARGETS.glob("*.csv")) if p.stem != args.reference]
    pool = pd.concat(others).drop_duplicates()
    smiles = pool[~pool.isin(set(reference))].tolist()[: args.n]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{len(smiles)} molecules, reference {len(reference)} molecules\n")

    fragments = {"fragments": ["*c1ccccc1 + *N*"] * len(smiles)}

    def table_call():
        return molecule_table(smiles, proxy=ConstantProxy(), reference_smiles=reference, extra=fragments)

    timed("molecule_table, cold (first call)", table_call)
    table = timed("molecule_table, warm (descriptor memo, reference memo)", table_call)
    clear_memo()
    reward = Reward.from_config(DEFAULT_REWARD_CONFIG_WITHOUT_PROXY)
    result = timed("  (the sampler scoring with qed/sa/mw components)", lambda: reward.score(smiles))
    timed(
        "molecule_table, reward's qed/sa/mw reused",
        lambda: molecule_table(smiles, result, ConstantProxy(), reference, extra=fragments, reward=reward),
    )
    print("  parts:")
    batch = timed("  parse (MolBatch.parse)", lambda: MolBatch.parse(smiles))
    ref = timed("  reference fingerprints (ReferenceSet)", lambda: ReferenceSet(reference))
    timed("  nearest training molecule (BulkTanimoto)", lambda: ref.nearest(batch.mols))
    for name, fn in {**DESCRIPTORS, **COUNTS}.items():
        timed(f"  property {name}", lambda fn=fn: [fn(m) for m in batch.mols])
    timed("  scaffold (murcko)", lambda: [murcko(m) for m in batch.mols])
    filters = parse_filters("pains,lipinski,veber,sa<=4,qed>=0.5,mw=200-500,has=[NH2]c,novel")
    timed(
        "apply_filters (8 filters) on the table",
        lambda: apply_filters(table["smiles"], filters, reference, table),
    )
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("csv", "sdf", "smi"):
            timed(f"write_molecules .{ext}", lambda ext=ext: write_molecules(table, Path(tmp) / f"out.{ext}"))


if __name__ == "__main__":
    main()
