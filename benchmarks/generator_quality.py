"""What a generator proposes: structural alerts, predicted activity, diversity, applicability domain.

    python benchmarks/generator_quality.py [MODEL] [--n 1000] [--seed 0] [--beta BETA] [--filters SPEC]

Samples ``--n`` unique molecules from MODEL (default: the shipped generator, ``models/generator_default``)
with ``molgfn sample``'s machinery and prints: the fraction that matches any PAINS, Brenk or NIH alert
(checked here with RDKit's FilterCatalog directly, not with molgfn's filters), the count per catalogue and
the most frequent alerts, the mean predicted pK (``proxy_mean``) and mean reward, IntDiv (MOSES, p = 1) and
the fraction inside the proxy's applicability domain.
"""

from __future__ import annotations

import argparse
import collections
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", nargs="?", default="default")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beta", type=float, default=None)
    parser.add_argument("--filters", default=None)
    args = parser.parse_args()

    import numpy as np
    import torch
    from rdkit import Chem
    from rdkit.Chem import FilterCatalog

    from molgfn.candidates.generate import load_generator
    from molgfn.chem.metrics import internal_diversity

    torch.set_num_threads(1)
    start = time.perf_counter()
    generator = load_generator(args.model)
    table, report = generator.generate(
        args.n, beta=args.beta, unique=True, filters=args.filters, seed=args.seed
    )
    generator.close()
    seconds = time.perf_counter() - start

    catalogs = {
        "PAINS": FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS,
        "Brenk": FilterCatalog.FilterCatalogParams.FilterCatalogs.BRENK,
        "NIH": FilterCatalog.FilterCatalogParams.FilterCatalogs.NIH,
    }
    checkers = {}
    for name, which in catalogs.items():
        params = FilterCatalog.FilterCatalogParams()
        params.AddCatalog(which)
        checkers[name] = FilterCatalog.FilterCatalog(params)
    mols = [Chem.MolFromSmiles(s) for s in table["smiles"]]
    hit_any = np.zeros(len(mols), dtype=bool)
    per_catalog = {}
    frequent: collections.Counter = collections.Counter()
    for name, catalog in checkers.items():
        hits = np.array([catalog.HasMatch(m) for m in mols])
        per_catalog[name] = int(hits.sum())
        hit_any |= hits
        for m in mols:
            for entry in catalog.GetMatches(m):
                frequent[f"{name}: {entry.GetDescription()}"] += 1

    print(f"model {args.model}: {len(table)} unique molecules ({report.sampled} sampled, seed {args.seed}, "
          f"beta {args.beta if args.beta is not None else 'the top of its range'}, filters {args.filters or 'none'}) "
          f"in {seconds:.0f} s")  # fmt: skip
    print(f"any PAINS/Brenk/NIH alert: {hit_any.mean():.1%} ({int(hit_any.sum())})")
    print("per catalogue: " + ", ".join(f"{k} {v}" for k, v in per_catalog.items()))
    print("most frequent: " + "; ".join(f"{k} {v}" for k, v in frequent.most_common(6)))
    if "proxy_mean" in table:
        print(f"mean predicted pK: {table['proxy_mean'].mean():.3f} (spread {table['proxy_std'].mean():.2f})")
    print(f"mean reward: {table['reward'].mean():.4f}")
    print(f"IntDiv (p = 1): {internal_diversity(table['smiles'].tolist()):.4f}")
    if "in_domain" in table:
        print(f"inside the applicability domain: {table['in_domain'].mean():.1%}")


if __name__ == "__main__":
    main()
