"""``molgfn reward``: check a reward before training.

``molgfn reward score [--config RUN.toml] INPUT --out OUT.csv`` scores a .smi/.csv/.tsv file of SMILES
and writes every component's raw value and desirability, the score and (with ``--beta``) the log-reward.
``molgfn reward show-config`` prints the default ``[reward]`` table as TOML, to start a run config from.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from molgfn.errors import MolgfnError
from molgfn.reward.defaults import DEFAULT_REWARD_CONFIG

if TYPE_CHECKING:
    import pandas as pd

SMILES_SUFFIXES = (".smi", ".smiles", ".txt")
TABLE_SUFFIXES = (".csv", ".tsv")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reward", help="score molecules with a reward; show the default reward")
    sub = parser.add_subparsers(dest="reward_command", metavar="SUBCOMMAND", required=True)

    score = sub.add_parser("score", help="score a file of SMILES with every reward component")
    score.add_argument(
        "input", type=Path, help="SMILES file: .smi/.txt (SMILES [name] per line) or .csv/.tsv"
    )
    score.add_argument("--out", type=Path, required=True, help="output CSV (one row per input molecule)")
    score.add_argument(
        "--config",
        type=Path,
        help="run config TOML whose [reward] table defines the reward (default: built-in)",
    )
    score.add_argument(
        "--smiles-column", help="SMILES column of a CSV/TSV input (default: the 'smiles' column)"
    )
    score.add_argument("--beta", type=float, help="also write log_reward = beta * log(max(score, min_score))")
    score.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    score.set_defaults(func=run_score)

    show = sub.add_parser("show-config", help="print the default [reward] table as TOML")
    show.set_defaults(func=run_show_config)


def read_molecules(path: Path, smiles_column: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read an input file into a frame and return it with the name of its SMILES column."""
    import pandas as pd

    if not path.is_file():
        raise MolgfnError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        try:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise MolgfnError(f"cannot read {path}: {exc}") from exc
        if smiles_column is None:
            matches = [c for c in frame.columns if c.strip().lower() == "smiles"]
            if not matches:
                raise MolgfnError(
                    f"{path}: no 'smiles' column; pass --smiles-column (columns: {', '.join(frame.columns)})"
                )
            smiles_column = matches[0]
        elif smiles_column not in frame.columns:
            raise MolgfnError(
                f"--smiles-column: {smiles_column!r} is not a column of {path} (columns: {', '.join(frame.columns)})"
            )
        return frame, smiles_column
    if suffix in SMILES_SUFFIXES:
        if smiles_column is not None:
            raise MolgfnError(f"--smiles-column: only for .csv/.tsv input, not {path.name}")
        rows = []
        for line in path.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            rows.append({"smiles": parts[0], "name": parts[1].strip() if len(parts) > 1 else ""})
        frame = pd.DataFrame(rows, columns=["smiles", "name"])
        if not frame["name"].astype(bool).any():
            frame = frame.drop(columns="name")
        return frame, "smiles"
    raise MolgfnError(
        f"{path}: unsupported input type {suffix!r}; use one of {', '.join(SMILES_SUFFIXES + TABLE_SUFFIXES)}"
    )


def run_score(args: argparse.Namespace) -> int:
    import pandas as pd

    from molgfn.reward import Reward

    out: Path = args.out
    if out.exists() and not args.force:
        raise MolgfnError(f"--out: {out} exists; pass --force to overwrite it")
    frame, column = read_molecules(args.input, args.smiles_column)
    if frame.empty:
        raise MolgfnError(f"{args.input}: no molecules")
    if args.config is not None:
        reward = Reward.from_toml(args.config)
    else:
        reward = Reward.from_config(copy.deepcopy(DEFAULT_REWARD_CONFIG))
    result = reward.score(frame[column].tolist())
    scores = result.to_frame().drop(columns="smiles")
    if args.beta is not None:
        scores["log_reward"] = reward.log_reward(result.score, args.beta)
    clash = [c for c in scores.columns if c in frame.columns]
    if clash:
        raise MolgfnError(f"{args.input}: input column {clash[0]!r} clashes with an output column; rename it")
    table = pd.concat([frame.reset_index(drop=True), scores], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    n_invalid = int((~result.valid).sum())
    print(
        f"scored {len(table)} molecules ({n_invalid} invalid) with components {', '.join(reward.names)}; "
        f"mean score {float(result.score.mean()):.4f}; wrote {out}"
    )
    return 0


def run_show_config(args: argparse.Namespace) -> int:
    import tomli_w

    sys.stdout.write(tomli_w.dumps({"reward": DEFAULT_REWARD_CONFIG}))
    return 0
