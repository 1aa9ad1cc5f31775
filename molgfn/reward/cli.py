"""``molgfn reward``: check a reward before training.

``molgfn reward score [--config RUN.toml] INPUT --out OUT.csv`` scores a .smi/.csv/.tsv file of SMILES
and writes every component's raw value and desirability, the score and (with ``--beta``) the log-reward.
``molgfn reward show-config`` prints the default ``[reward]`` table as TOML, to start a run config from.
"""

from __future__ import annotations

import argparse
import copy
import functools
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
    add_backend_arguments(score)
    score.set_defaults(func=run_score)

    show = sub.add_parser("show-config", help="print the default [reward] table as TOML")
    show.set_defaults(func=run_show_config)

    cache = subparsers.add_parser(
        "cache",
        help="inspect or empty the oracle cache (docking and other expensive values)",
        description="The oracle cache keeps every value an expensive component (docking, a plugin marked "
        "expensive = true) computed, so no molecule is paid for twice. Default file: $MOLGFN_ORACLE_CACHE "
        "or ~/.cache/molgfn/oracle.sqlite ([reward] oracle_cache = PATH in a run config).",
    )
    csub = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND", required=True)
    info = csub.add_parser("info", help="one line per oracle: values stored, failures, time paid")
    clear = csub.add_parser("clear", help="delete the values of one oracle (--key) or of all")
    clear.add_argument(
        "--key", help="the oracle's key (or a unique prefix), as `molgfn cache info` prints it"
    )
    poses = csub.add_parser("poses", help="write the best docked poses of an oracle as SDF")
    poses.add_argument("--key", required=True, help="the docking oracle's key (or a unique prefix)")
    poses.add_argument("--top", type=int, default=100, help="how many, best scores first (default 100)")
    poses.add_argument("--out", type=Path, required=True, help="SDF file to write")
    for p in (info, clear, poses):
        p.add_argument(
            "--cache", type=Path, help="cache file (default: $MOLGFN_ORACLE_CACHE or ~/.cache/...)"
        )
    info.set_defaults(func=run_cache_info)
    clear.set_defaults(func=run_cache_clear)
    poses.set_defaults(func=run_cache_poses)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend, --ray-address, --ray-actors: where molecules are scored (docs/oracles.md)."""
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        help="score here (local, the default) or on Ray actors, on this machine or a cluster",
    )
    parser.add_argument(
        "--ray-address",
        help="with --backend ray: '' (default) an embedded Ray here, 'auto' the cluster started here, "
        "or HOST:PORT of a Ray head",
    )
    parser.add_argument("--ray-actors", type=int, help="with --backend ray: actors (default: one per CPU)")


def backend_of(args: argparse.Namespace) -> tuple[str, str, int]:
    """(backend, ray address, actors) of the flags (default: local), checked before any work starts."""
    backend = args.backend or "local"
    address = args.ray_address or ""
    actors = args.ray_actors if args.ray_actors is not None else 0
    if backend == "local" and (args.ray_address is not None or args.ray_actors is not None):
        raise MolgfnError("--ray-address/--ray-actors: only with --backend ray")
    if actors < 0:
        raise MolgfnError(f"--ray-actors: must be >= 0 (got {actors})")
    if backend == "ray":
        from molgfn.distributed import check_address, require_ray

        require_ray("--backend")
        check_address(address, "--ray-address")
    return backend, address, actors


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
    backend, address, actors = backend_of(args)
    frame, column = read_molecules(args.input, args.smiles_column)
    if frame.empty:
        raise MolgfnError(f"{args.input}: no molecules")
    if args.config is not None:
        build = functools.partial(Reward.from_toml, args.config.resolve())
    else:
        build = functools.partial(Reward.from_config, copy.deepcopy(DEFAULT_REWARD_CONFIG))
    reward = build()
    remote_stats = None
    if backend == "ray":
        result, remote_stats, where = _score_on_ray(build, frame[column].tolist(), address, actors)
        print(f"scored on Ray: {where}")
    else:
        result = _score_with_progress(reward, frame[column].tolist())
    scores = result.to_frame().drop(columns="smiles")
    failures = _oracle_failures(reward, result)
    for name, reasons in failures.items():
        scores.insert(list(scores.columns).index(name) + 1, f"{name}_error", reasons)
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
    for term in reward.terms:
        stats = getattr(term.component, "stats", None)
        if remote_stats is not None and stats is not None:
            stats = remote_stats.get(term.name, stats)
        if stats is not None:
            print(
                f"{term.name}: {stats.computed} computed, {stats.cached} from the cache "
                f"({term.component.cache.path}), {stats.failed} failed"
            )
    for name, reasons in failures.items():
        bad = [(s, r) for s, r in zip(table[column], reasons) if r]
        for smiles, reason in bad[:10]:
            print(f"molgfn: warning: {name}: {smiles}: {reason} (scored 0)", file=sys.stderr)
        if len(bad) > 10:
            print(
                f"molgfn: warning: {name}: {len(bad) - 10} more failed (column {name}_error)", file=sys.stderr
            )
    return 0


def _score_with_progress(reward, smiles: list[str], chunk: int = 16):
    """Score in chunks with a progress bar (an expensive oracle takes seconds per molecule)."""
    from tqdm.auto import tqdm

    from molgfn.reward.reward import RewardResult

    if not any(getattr(t.component, "expensive", False) for t in reward.terms) or len(smiles) <= chunk:
        return reward.score(smiles)
    parts = []
    with tqdm(total=len(smiles), unit="mol", desc="scoring", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(smiles), chunk):
            parts.append(reward.score(smiles[start : start + chunk]))
            bar.update(len(parts[-1].smiles))
    return RewardResult.join(parts)


def _score_on_ray(build, smiles: list[str], address: str, actors: int):
    """Score on Ray actors with a progress bar: (result, oracle stats per name, where it ran)."""
    from tqdm.auto import tqdm

    from molgfn.reward.remote import RemoteScorer

    with tqdm(total=len(smiles), unit="mol", desc="scoring on Ray", file=sys.stderr, disable=None) as bar:

        def progress(done: int, in_flight: int) -> None:
            bar.n = done
            bar.set_postfix(in_flight=in_flight, refresh=False)
            bar.refresh()

        scorer = RemoteScorer(build, address, actors, on_progress=progress)
        try:
            result = scorer.score(smiles)
        finally:
            scorer.close()
    return result, scorer.stats, scorer.pool.summary()


def _oracle_failures(reward, result) -> dict[str, list[str]]:
    """Per expensive component, the reason each molecule has no value ('' where it has one)."""
    from molgfn.chem.molecules import MolBatch

    out = {}
    for term in reward.terms:
        errors = getattr(term.component, "errors_of", None)
        if errors is None:
            continue
        batch = MolBatch.parse(result.smiles)
        out[term.name] = errors(batch)
    return out


def run_show_config(args: argparse.Namespace) -> int:
    import tomli_w

    sys.stdout.write(tomli_w.dumps({"reward": DEFAULT_REWARD_CONFIG}))
    return 0


def run_cache_info(args: argparse.Namespace) -> int:
    from molgfn.reward.cache import OracleCache

    cache = OracleCache(args.cache)
    rows = cache.info()
    print(f"oracle cache {cache.path}: {len(rows)} oracles, {sum(r['values'] for r in rows)} values")
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items() if k != "kind")
        print(
            f"  {row['key']}  {row['kind']:<8} {row['values']:>7} values  {row['failed']:>5} failed  "
            f"{row['pending']:>3} pending  {row['seconds'] / 3600:.2f} h paid  ({params})"
        )
    return 0


def run_cache_clear(args: argparse.Namespace) -> int:
    from molgfn.reward.cache import OracleCache

    cache = OracleCache(args.cache)
    n = cache.clear(args.key)
    print(f"deleted {n} values from {cache.path}")
    return 0


def run_cache_poses(args: argparse.Namespace) -> int:
    from molgfn.reward.cache import OracleCache

    if args.top < 1:
        raise MolgfnError(f"--top: must be at least 1 (got {args.top})")
    cache = OracleCache(args.cache)
    keys = [r["key"] for r in cache.info() if r["key"].startswith(args.key)]
    if len(keys) != 1:
        raise MolgfnError(
            f"--key {args.key}: {len(keys)} oracles match in {cache.path} (see molgfn cache info)"
        )
    rows = cache.poses(keys[0], args.top)
    with open(args.out, "w") as fh:
        for smiles, value, block in rows:
            lines = block.rstrip("\n").split("\n")
            lines[0] = smiles
            fh.write("\n".join(lines) + f"\n>  <smiles>\n{smiles}\n\n>  <vina_score>\n{value:.3f}\n\n$$$$\n")
    print(f"wrote {len(rows)} poses to {args.out}")
    return 0
