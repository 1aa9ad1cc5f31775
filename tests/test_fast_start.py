"""`molgfn --help`, `molgfn runs` and every command's --help start without torch, torch-geometric, RDKit or
Streamlit: the command modules import them inside their handlers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torch_geometric", "rdkit", "streamlit")

PROBE = """
import contextlib, io, json, sys
HEAVY = json.loads(sys.argv[2])
from molgfn.cli import build_parser, main
argv = json.loads(sys.argv[1])
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
parser = build_parser()
commands = {}
for action in parser._subparsers._group_actions:
    for name, sub in action.choices.items():
        nested = [a.choices for a in sub._actions if getattr(a, "choices", None) and isinstance(a.choices, dict)]
        commands[name] = sorted(nested[0]) if nested else []
print(json.dumps({"code": code, "out": out.getvalue(), "commands": commands,
                  "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def probe(argv: list[str], cwd) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_top_level_help_imports_nothing_heavy(tmp_path):
    result = probe(["--help"], tmp_path)
    assert result["code"] == 0 and "train" in result["out"] and "sample" in result["out"]
    assert result["heavy"] == []


def test_listing_runs_imports_nothing_heavy(tmp_path):
    result = probe(["runs", "--runs-dir", str(tmp_path)], tmp_path)
    assert result["code"] == 0
    assert result["heavy"] == []


def all_help_invocations() -> list[list[str]]:
    commands = probe(["--help"], None)["commands"]
    assert {"train", "runs", "sample", "verify", "proxy", "reward", "app"} <= set(commands)
    out = []
    for name, subcommands in sorted(commands.items()):
        out.append([name, "--help"])
        out += [[name, sub, "--help"] for sub in subcommands]
    return out


@pytest.mark.parametrize("argv", all_help_invocations(), ids=" ".join)
def test_every_command_help_imports_nothing_heavy(argv, tmp_path):
    result = probe(argv, tmp_path)
    assert result["code"] == 0 and "usage: molgfn" in result["out"]
    assert result["heavy"] == [], f"molgfn {' '.join(argv)} imported {result['heavy']}"
