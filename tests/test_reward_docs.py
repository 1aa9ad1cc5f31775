"""docs/reward.md stays in step with the code: its TOML example parses, its tables list every kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from molgfn.errors import MolgfnError
from molgfn.reward import COMPONENT_KINDS, TRANSFORM_KINDS, Reward

REPO_ROOT = Path(__file__).resolve().parents[1]

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
DOC = (REPO_ROOT / "docs" / "reward.md").read_text()


def test_toml_example_parses_and_validates_up_to_its_missing_files(tmp_path) -> None:
    example = re.search(r"```toml\n(.*?)```", DOC, re.S).group(1)
    reward_table = tomllib.loads(example)["reward"]
    # the example's proxy file does not exist in tmp_path: validation gets as far as naming it
    with pytest.raises(MolgfnError, match=r"reward\.components\[0\]\.path: proxy file not found"):
        Reward.from_config(reward_table, base_dir=tmp_path)


def test_every_component_kind_and_transform_is_documented() -> None:
    for kind in COMPONENT_KINDS:
        assert f"| `{kind}` |" in DOC, kind
    for kind in TRANSFORM_KINDS:
        assert f"`{kind}`" in DOC, kind
