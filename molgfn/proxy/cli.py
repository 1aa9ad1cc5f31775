"""``molgfn proxy train|predict|info``: train a proxy on an assay table, score molecules, show a proxy."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from molgfn.errors import MolgfnError
from molgfn.proxy.options import FAMILIES, MODELS, SMILES_COLUMNS, SPLITS, UNITS
from molgfn.resources import PROXIES, resolve

# torch, RDKit and pandas are imported by the commands that use them: --help stays light


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``proxy`` command group."""
    group = subparsers.add_parser("proxy", help="train, apply and inspect activity proxies")
    sub = group.add_subparsers(dest="proxy_command", metavar="PROXY_COMMAND")
    group.set_defaults(func=lambda args: group.print_help() or 1)

    train = sub.add_parser("train", help="train a proxy on an assay table (CSV, TSV or SDF)")
    train.add_argument(
        "data", metavar="DATA", help="assay table: .csv/.tsv/.txt (delimiter detected) or .sdf"
    )
    train.add_argument(
        "--smiles-col", help="SMILES column (default: found by common names, e.g. smiles, Smiles)"
    )
    train.add_argument(
        "--label-col", help="label column (default: found by common names, e.g. pChEMBL Value, pK)"
    )
    train.add_argument(
        "--units",
        choices=UNITS,
        help="units of a concentration label, converted to pK = -log10(molar); p = as given",
    )
    train.add_argument(
        "--model", choices=MODELS, default="auto", help="model family; auto keeps the best on validation"
    )
    train.add_argument(
        "--split", choices=SPLITS, default="scaffold", help="held-out split (default: scaffold)"
    )
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the models (default: 0)")
    train.add_argument("--ensemble", type=int, default=3, help="GNN ensemble members (default: 3)")
    train.add_argument("--out", type=Path, help="proxy file to write (default: <DATA stem>.proxy.pt here)")
    train.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    train.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default: 1; small batches gain little)"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    predict = sub.add_parser("predict", help="score molecules with a proxy")
    predict.add_argument(
        "proxy", metavar="PROXY", type=Path, help="proxy file (.pt), or default (the shipped one)"
    )
    predict.add_argument(
        "input", metavar="INPUT", type=Path, help="molecules: .smi (one SMILES per line) or a table"
    )
    predict.add_argument(
        "--out", type=Path, required=True, help="CSV to write: smiles, canonical_smiles, mean, std"
    )
    predict.add_argument(
        "--smiles-col", help="SMILES column of a table INPUT (default: found by common names)"
    )
    predict.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    predict.set_defaults(func=run_predict)

    info = sub.add_parser("info", help="print a proxy's metadata and held-out metrics")
    info.add_argument(
        "proxy", metavar="PROXY", type=Path, help="proxy file (.pt), or default (the shipped one)"
    )
    info.add_argument("--json", action="store_true", help="print the metadata as JSON")
    info.set_defaults(func=run_info)


def _check_out(path: Path, force: bool) -> None:
    """Refuse an output that exists (without --force), is a folder, or cannot be written: before the work."""
    import tempfile

    if path.exists() and path.is_dir():
        raise MolgfnError(f"{path} is a folder; --out must name a file")
    if path.exists() and not force:
        raise MolgfnError(f"{path} exists; pass --force to overwrite it")
    folder = path.parent
    if not folder.is_dir():
        raise MolgfnError(f"--out {path}: folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise MolgfnError(f"--out {path}: cannot write in {folder} ({exc.strerror or exc})") from None


def _non_finite(metrics: dict, prefix: str = "") -> list[str]:
    """The metric names (dotted paths) whose value is NaN or infinite."""
    import math

    bad = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            bad += _non_finite(value, name + ".")
        elif isinstance(value, float) and not math.isfinite(value):
            bad.append(name)
    return bad


def run_train(args: argparse.Namespace) -> int:
    """Load, train, print the load report and the metrics table, save the proxy (and dropped rows)."""
    import torch

    from molgfn.proxy.data import load_assay_table
    from molgfn.proxy.train import metrics_table, train_proxy

    if args.threads < 1:
        raise MolgfnError(f"--threads must be at least 1; got {args.threads}")
    if not 1 <= args.ensemble <= 20:
        raise MolgfnError(f"--ensemble must be from 1 to 20; got {args.ensemble}")
    out = args.out or Path(Path(args.data).stem + ".proxy.pt")
    _check_out(out, args.force)
    torch.set_num_threads(args.threads)
    table, report = load_assay_table(args.data, args.smiles_col, args.label_col, args.units)
    print(report.summary())
    if report.n_dropped:
        dropped_path = report.write_dropped(out.with_name(out.name + ".dropped.csv"))
        print(f"dropped rows with reasons: {dropped_path}")
    try:
        proxy, metrics = train_proxy(
            table, model=args.model, split=args.split, seed=args.seed, ensemble=args.ensemble,
            progress=not args.quiet, report=report,
        )  # fmt: skip
    except ValueError as exc:
        raise MolgfnError(f"{args.data}: {exc}") from exc
    bad = _non_finite(metrics)
    if bad:
        raise MolgfnError(
            f"{args.data}: training gave non-finite held-out metrics ({', '.join(bad[:4])}); no proxy saved. "
            "Check the labels' scale (--units) and the rows in the load report"
        )
    split = proxy.metadata["split"]
    print(
        f"\nheld-out metrics ({split['kind']} split, seed {split['seed']}: "
        f"{split['n_train']} train / {split['n_valid']} valid / {split['n_test']} test; "
        f"label {proxy.metadata.get('label', 'as given')})"
    )
    print(metrics_table(metrics))
    print(
        f"chosen: {metrics['chosen']} ({metrics['selection']}); trained in {proxy.metadata['training_seconds']:.0f} s"
    )
    proxy.save(out)
    print(f"saved proxy to {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def read_smiles_input(path: Path, smiles_col: str | None = None) -> list[str]:
    """SMILES from a .smi file (first token of each non-empty line; a 'smiles' header is skipped) or
    from a delimited table's SMILES column."""
    import pandas as pd

    from molgfn.proxy.data import detect_delimiter, find_column

    if not path.is_file():
        raise MolgfnError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MolgfnError(f"{path}: cannot read the file: {exc}") from exc
    if path.suffix.lower() in (".smi", ".smiles"):
        tokens = [line.split()[0] for line in text.splitlines() if line.strip()]
        if tokens and tokens[0].lower() in SMILES_COLUMNS:
            tokens = tokens[1:]
        return tokens
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=detect_delimiter(text, path.suffix.lower()),
            dtype=str,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise MolgfnError(f"{path}: cannot parse as a table: {exc}") from exc
    columns = list(frame.columns)
    column = find_column(columns, [smiles_col.lower()] if smiles_col else SMILES_COLUMNS)
    if column is None:
        raise MolgfnError(f"{path}: no SMILES column{' ' + repr(smiles_col) if smiles_col else ''}; "
                          f"columns found: {', '.join(columns)}")  # fmt: skip
    return frame[column].tolist()


def run_predict(args: argparse.Namespace) -> int:
    """Score the molecules of INPUT and write smiles, canonical_smiles, mean, std."""
    import pandas as pd

    from molgfn.proxy.data import standardize_smiles
    from molgfn.proxy.model import Proxy

    _check_out(args.out, args.force)
    proxy = Proxy.load(resolve(args.proxy, PROXIES))
    smiles = read_smiles_input(args.input, args.smiles_col)
    mean, std = proxy.predict(smiles)
    canonical = [standardize_smiles(s) or "" for s in smiles]
    pd.DataFrame({"smiles": smiles, "canonical_smiles": canonical, "mean": mean, "std": std}).to_csv(
        args.out, index=False
    )
    n_bad = sum(1 for c in canonical if not c)
    n_nan = int(pd.isna(mean).sum()) - int(pd.isna(mean[[not c for c in canonical]]).sum())
    print(
        f"scored {len(smiles) - n_bad} molecules ({n_bad} unparsable, written with empty scores) to {args.out}"
    )
    if n_nan:
        print(f"molgfn: warning: the proxy gave no finite score for {n_nan} valid molecules", file=sys.stderr)
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print what a proxy is: target data, columns, units, split, metrics table, versions."""
    from molgfn.proxy.model import Proxy
    from molgfn.proxy.train import metrics_table

    proxy = Proxy.load(resolve(args.proxy, PROXIES))
    meta = proxy.metadata
    if args.json:
        json.dump(meta, sys.stdout, indent=2)
        print()
        return 0
    print(f"proxy: {args.proxy}")
    keys = [
        ("model family", "model_family"), ("members", "ensemble"), ("spread", "spread"),
        ("data file", "data_file"), ("data sha256", "data_sha256"), ("SMILES column", "smiles_col"),
        ("label column", "label_col"), ("units", "units"), ("label", "label"), ("molecules", "n_molecules"),
        ("trained at", "trained_at"), ("training seconds", "training_seconds"),
        ("molgfn version", "molgfn_version"), ("torch / rdkit", None),
    ]  # fmt: skip
    for title, key in keys:
        value = f"{meta.get('torch_version')} / {meta.get('rdkit_version')}" if key is None else meta.get(key)
        print(f"  {title:<17} {value if value is not None else '-'}")
    split = meta.get("split", {})
    print(
        f"  {'split':<17} {split.get('kind')} (seed {split.get('seed')}): {split.get('n_train')} train / "
        f"{split.get('n_valid')} valid / {split.get('n_test')} test"
    )
    if "load_report" in meta:
        counts = meta["load_report"]
        print(
            f"  {'load report':<17} {counts['n_rows']} rows, {counts['n_invalid_smiles']} invalid SMILES, "
            f"{counts['n_missing_label']} empty labels, {counts['n_bad_label']} bad labels, "
            f"{counts['n_duplicates_merged']} duplicates merged"
        )
    print(
        "\nheld-out metrics (families: "
        + ", ".join(f for f in FAMILIES if f in meta["metrics"]["families"])
        + ")"
    )
    print(metrics_table(meta["metrics"]))
    return 0
