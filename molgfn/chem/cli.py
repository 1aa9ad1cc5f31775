"""``molgfn fragments mine|check`` and ``molgfn demo``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from molgfn.errors import MolgfnError


def add_parser(sub: argparse._SubParsersAction) -> None:
    frag = sub.add_parser("fragments", help="mine and check fragment vocabularies")
    fsub = frag.add_subparsers(dest="fragments_command", metavar="COMMAND", required=True)

    mine = fsub.add_parser(
        "mine",
        help="build a vocabulary from molecule files by BRICS decomposition",
        description="Build a vocabulary of the most frequent BRICS fragments. Without --out the vocabulary "
        "is written to standard output. The command is recorded in the file's header.",
    )
    mine.add_argument(
        "inputs", nargs="+", help="molecule files (CSV/TSV with a SMILES column, SMI, SDF) or directories"
    )
    mine.add_argument("--top", type=int, default=100, help="number of fragments to keep (default 100)")
    mine.add_argument(
        "--max-atoms", type=int, default=12, help="largest fragment, in heavy atoms (default 12)"
    )
    mine.add_argument(
        "--min-atoms", type=int, default=1, help="smallest fragment, in heavy atoms (default 1)"
    )
    mine.add_argument(
        "--max-stems", type=int, default=3, help="most attachment points per fragment (default 3)"
    )
    mine.add_argument("--jobs", type=int, default=1, help="worker processes (does not change the result)")
    mine.add_argument("--out", type=Path, help="vocabulary file to write (default: standard output)")
    mine.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    mine.set_defaults(func=_mine)

    check = fsub.add_parser("check", help="validate a vocabulary file and summarise it")
    check.add_argument("vocab", help="vocabulary file, or a shipped name: default, tiny")
    check.set_defaults(func=_check)

    demo = sub.add_parser("demo", help="a short demonstration of the fragment environment")
    demo.add_argument("--vocab", default="default", help="vocabulary file or shipped name (default: default)")
    demo.add_argument("--max-frags", type=int, default=9, help="size bound (default 9)")
    demo.add_argument("--n", type=int, default=10, help="molecules to show (default 10)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)


def _mine(args: argparse.Namespace) -> int:
    from molgfn.chem.mining import mine_vocabulary

    if args.out is not None and args.out.exists() and not args.force:
        raise MolgfnError(f"{args.out}: exists; pass --force to overwrite")
    recorded = ["molgfn", "fragments", "mine", *map(str, args.inputs), "--top", str(args.top)]
    recorded += [
        "--max-atoms",
        str(args.max_atoms),
        "--min-atoms",
        str(args.min_atoms),
        "--max-stems",
        str(args.max_stems),
    ]
    vocab, report = mine_vocabulary(
        args.inputs,
        top=args.top,
        max_atoms=args.max_atoms,
        max_stems=args.max_stems,
        min_atoms=args.min_atoms,
        jobs=args.jobs,
        command=shlex.join(recorded),
        progress=True,
    )
    text = vocab.to_text()
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise MolgfnError(f"{args.out}: cannot write the vocabulary ({exc.strerror})") from None
    print(
        f"{report.molecules} unique molecules from {len(report.files)} files ({report.invalid} unparsable), "
        f"{report.fragments_seen} distinct fragments, {report.kept} kept"
        + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from molgfn.chem.vocab import load_vocabulary

    vocab = load_vocabulary(args.vocab)
    stems = vocab.n_stems
    symmetric = [f for f in vocab.fragments if f.group_order > 1]
    print(
        f"{vocab.source}: {len(vocab)} fragments, {int(stems.sum())} stems ({vocab.n_stem_classes} up to symmetry)"
    )
    for k in range(1, vocab.max_stems + 1):
        print(f"  {int((stems == k).sum())} fragments with {k} stem{'s' if k > 1 else ''}")
    print(
        f"  {len(symmetric)} fragments with equivalent stems, e.g. "
        + ", ".join(f.smiles for f in symmetric[:5])
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from molgfn.chem.env import FragmentEnv
    from molgfn.chem.vocab import load_vocabulary

    if args.max_frags < 1:
        raise MolgfnError("--max-frags must be at least 1")
    vocab = load_vocabulary(args.vocab)
    env = FragmentEnv(vocab, max_frags=args.max_frags)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    batch, transitions = env.random_rollout(256, rng)
    rollout = time.perf_counter() - start
    smiles = env.smiles(batch)
    print(
        f"vocabulary {vocab.source}: {len(vocab)} fragments; at most {args.max_frags} fragments per molecule"
    )
    print(f"256 random trajectories, {transitions} transitions in {rollout * 1e3:.1f} ms")
    print(f"{len(set(smiles))} distinct molecules; the first {args.n}:")
    for tree, smi in list(zip(batch.trees(), smiles))[: args.n]:
        names = " + ".join(vocab[f].smiles for f in tree.frags)
        print(f"  {smi:<60} <- {names}")
    print(
        "Next: `molgfn app` (the dashboard), `molgfn train --config configs/default.toml`, `molgfn sample`."
    )
    return 0
