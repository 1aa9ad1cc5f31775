"""docs/training.md documents every config field with the code's default and help, and nothing else."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import tomli_w

from molgfn.config import SECTIONS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()


def documented(section: str) -> dict[str, tuple[str, str]]:
    block = DOC.split(f"### `[{section}]`", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| \w+ \| `([^`]*)` \| .*? \| (.*) \|$", block, flags=re.M)
    return {key: (default, meaning) for key, default, meaning in rows}


def test_every_config_field_is_documented_with_its_default_and_help():
    for section, cls in SECTIONS.items():
        rows = documented(section)
        assert list(rows) == [f.name for f in fields(cls)], section
        for f in fields(cls):
            default = tomli_w.dumps({"v": f.default}).split("=", 1)[1].strip()
            assert rows[f.name] == (default, f.metadata["help"]), f"{section}.{f.name}"
