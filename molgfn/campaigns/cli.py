"""``molgfn campaign new | run | status | export | import``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "campaign",
        help="design campaigns: active learning in rounds against docking, any oracle or the lab",
        description="Rounds of: retrain the proxy on every label, warm-start the generator, pick a diverse "
        "batch, label it (oracle or lab). See docs/campaigns.md.",
    )
    sub = parser.add_subparsers(dest="campaign_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--campaigns-dir", default="campaigns", help="folder of the campaigns (default: campaigns)"
        )

    new = sub.add_parser("new", help="create a campaign from a config (and an assay table)")
    new.add_argument("--config", required=True, help="the campaign's TOML config")
    new.add_argument("--data", help="assay table of labelled molecules to start from (else: from nothing)")
    new.add_argument("--smiles-col", help="the table's SMILES column (found by name if not given)")
    new.add_argument("--label-col", help="the table's label column (found by name if not given)")
    new.add_argument("--units", help="label units: nM, uM, mM, M (converted to pK) or p (as given)")
    new.add_argument("--id", dest="campaign_id", help="campaign id (default: NAME-YYYYMMDD-HHMMSS)")
    common(new)
    new.set_defaults(func=_new)

    run = sub.add_parser("run", help="run the campaign's next phases (goes on after a crash)")
    run.add_argument("id", help="campaign id or folder")
    run.add_argument("--rounds", type=int, help="run up to this round (default: the config's rounds)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    common(run)
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="a campaign's rounds, or every campaign")
    status.add_argument("id", nargs="?", help="campaign id or folder (none: list the campaigns)")
    common(status)
    status.set_defaults(func=_status)

    export = sub.add_parser("export", help="a round's batch as CSV or SDF, each molecule with its id")
    export.add_argument("id", help="campaign id or folder")
    export.add_argument("--round", type=int, required=True, help="the round")
    export.add_argument("--out", required=True, help="output file: .csv, .tsv or .sdf")
    common(export)
    export.set_defaults(func=_export)

    imp = sub.add_parser("import", help="a lab's results (values by id or SMILES)")
    imp.add_argument("id", help="campaign id or folder")
    imp.add_argument("results", help="CSV with an 'id' or 'smiles' column and a value column")
    imp.add_argument("--column", help="the value column (default: label, value, result or measured)")
    common(imp)
    imp.set_defaults(func=_import)


def _open(args: argparse.Namespace):
    from molgfn.campaigns import Campaign

    path = Path(args.id)
    if not (path / "campaign.toml").is_file():
        path = Path(args.campaigns_dir) / args.id
    return Campaign(path)


def _new(args: argparse.Namespace) -> int:
    from molgfn.campaigns import new_campaign

    campaign = new_campaign(
        args.config, args.data, args.campaigns_dir, args.campaign_id,
        smiles_col=args.smiles_col, label_col=args.label_col, units=args.units,
    )  # fmt: skip
    start = campaign.store.phase(0, "start")
    campaign.store.close()
    what = (
        f"{start['molecules']} labelled molecules" if start else "nothing (round 0 picks a diverse start set)"
    )
    print(campaign.path)
    print(f"molgfn: campaign {campaign.id} created, starting from {what}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    campaign = _open(args)
    state = campaign.run(args.rounds, progress=not args.no_progress)
    print(f"molgfn: campaign {campaign.id} {state}", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    if args.id is None:
        from molgfn.campaigns import list_campaigns

        frame = list_campaigns(args.campaigns_dir)
        print(frame.to_string(index=False) if len(frame) else f"no campaigns in {args.campaigns_dir}")
        return 0
    campaign = _open(args)
    status = campaign.store.status()
    print(f"campaign {campaign.id}: {status.get('state', 'unknown')} (round {status.get('round')}, "
          f"phase {status.get('phase') or '-'})")  # fmt: skip
    summary = campaign.summary()
    if len(summary):
        columns = [c for c in ("round", "labels", "oracle_calls", "best", "top10_mean", "hits", "batch_rmse",
                               "batch_spearman", "proxy_valid_rmse") if c in summary.columns]  # fmt: skip
        print(summary[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    campaign.store.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    from molgfn.campaigns import export_batch

    campaign = _open(args)
    out = export_batch(campaign, args.round, args.out)
    campaign.store.close()
    print(out)
    return 0


def _import(args: argparse.Namespace) -> int:
    from molgfn.campaigns import import_results

    campaign = _open(args)
    stored, problems = import_results(campaign, args.results, args.column)
    for line in problems:
        print(f"molgfn: {line}", file=sys.stderr)
    print(f"molgfn: {stored} labels stored, {len(problems)} problems reported", file=sys.stderr)
    return 0
