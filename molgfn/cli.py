"""The ``molgfn`` command line.

Each command group lives beside the code it drives and registers itself here through an
``add_parser(subparsers)`` function; the handler is stored as ``func`` on the parsed namespace. The
command modules import torch, RDKit, pandas and Streamlit only inside their handlers, so ``--help`` and
``molgfn runs`` start fast (tested).
User errors (:class:`molgfn.errors.MolgfnError`) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from molgfn import __version__
from molgfn.errors import MolgfnError

# module path of each command group; each module defines add_parser(subparsers)
COMMAND_MODULES = [
    "molgfn.chem.cli",
    "molgfn.proxy.cli",
    "molgfn.reward.cli",
    "molgfn.training.verify_cli",
    "molgfn.candidates.cli",
    "molgfn.training.cli",
    "molgfn.campaigns.cli",
    "molgfn.dashboard.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="molgfn", description="Fragment-based GFlowNets for molecular design."
    )
    parser.add_argument("--version", action="version", version=f"molgfn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except MolgfnError as exc:
        print(f"molgfn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("molgfn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
