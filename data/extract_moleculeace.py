"""Rebuild ``data/targets/`` from the MoleculeACE wheel (MIT licence).

Usage (the wheel is fetched by pip, molgfn never imports MoleculeACE):

    pip download --no-deps moleculeace==3.0.0 -d /tmp/mace
    python data/extract_moleculeace.py /tmp/mace/MoleculeACE-3.0.0-py3-none-any.whl

Each MoleculeACE set holds ``smiles, exp_mean [nM], y, cliff_mol, split``. The tidy
form written here keeps the SMILES as given, the activity as pK = -log10(molar)
= 9 - log10(nM), the measured mean in nM, the original train/test split and the
activity-cliff flag.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "targets"


def main(wheel: str) -> None:
    OUT.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(
            n
            for n in zf.namelist()
            if n.startswith("MoleculeACE/Data/benchmark_data/") and n.endswith(".csv")
        )
        for name in names:
            rows = list(csv.DictReader(io.TextIOWrapper(zf.open(name), encoding="utf-8")))
            target = Path(name).stem
            with open(OUT / f"{target}.csv", "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(["smiles", "pK", "value_nM", "split", "cliff_mol"])
                for r in rows:
                    nm = float(r["exp_mean [nM]"])
                    w.writerow(
                        [
                            r["smiles"],
                            f"{9.0 - math.log10(nm):.4f}",
                            r["exp_mean [nM]"],
                            r["split"],
                            r["cliff_mol"],
                        ]
                    )
            print(f"{target}: {len(rows)} molecules")


if __name__ == "__main__":
    main(sys.argv[1])
