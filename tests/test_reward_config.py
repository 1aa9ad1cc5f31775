"""Config validation: every error is a MolgfnError whose message names the offending field."""

from __future__ import annotations

import re

import pytest

from molgfn.errors import MolgfnError
from molgfn.reward import Reward


def build(*components: dict, **top) -> Reward:
    return Reward.from_config({**top, "components": list(components)})


def expect_error(message: str, *components: dict, base_dir=None, **top) -> None:
    with pytest.raises(MolgfnError, match=re.escape(message)):
        Reward.from_config({**top, "components": list(components)}, base_dir=base_dir)


def test_valid_config_reads_every_field() -> None:
    reward = build(
        {"name": "drug-like", "kind": "qed", "weight": 2},
        {
            "kind": "logp",
            "weight": 0.5,
            "transform": {"kind": "window", "low": 1, "high": 3, "softness": 0.5},
        },
        aggregation="arithmetic",
        min_score=1e-3,
    )
    assert reward.names == ["drug-like", "logp"]
    assert [t.weight for t in reward.terms] == [2.0, 0.5]
    assert reward.aggregation == "arithmetic" and reward.min_score == 1e-3


def test_transform_high_must_exceed_low() -> None:
    expect_error(
        "reward.components[2].transform.high: must be > low (got 1 <= 3)",
        {"kind": "qed"},
        {"kind": "pains"},
        {"kind": "mw", "transform": {"kind": "sigmoid", "low": 3, "high": 1}},
    )


def test_unknown_keys_are_named() -> None:
    expect_error("reward.aggregaton: unknown key; allowed here: aggregation, components, min_score",
                 {"kind": "qed"}, aggregaton="geometric")  # fmt: skip
    expect_error("reward.components[0].wieght: unknown key", {"kind": "qed", "wieght": 1})
    expect_error("reward.components[0].transform.softnes: unknown key",
                 {"kind": "mw", "transform": {"kind": "window", "low": 1, "high": 2, "softnes": 1}})  # fmt: skip
    # a parameter of another kind is unknown here too
    expect_error("reward.components[0].kappa: unknown key", {"kind": "qed", "kappa": 1.0})


def test_wrong_types_are_named() -> None:
    expect_error(
        "reward.components[0].weight: must be a number, got string 'high'", {"kind": "qed", "weight": "high"}
    )
    expect_error(
        "reward.components[0].weight: must be a number, got boolean True", {"kind": "qed", "weight": True}
    )
    expect_error(
        "reward.components[0].transform: must be a table, got string",
        {"kind": "qed", "transform": "identity"},
    )
    expect_error("reward.components[0]: must be a table, got string", "qed")
    expect_error(
        "reward.components[0].command: must be an array of strings", {"kind": "command", "command": "ls -l"}
    )
    with pytest.raises(MolgfnError, match=re.escape("reward.components: must be a non-empty array")):
        Reward.from_config({"components": []})
    with pytest.raises(MolgfnError, match=re.escape("reward.components: missing (required)")):
        Reward.from_config({})


def test_out_of_range_values_are_named() -> None:
    expect_error("reward.components[0].weight: must be >= 0 (got -1)", {"kind": "qed", "weight": -1})
    expect_error("reward.min_score: must be > 0 (got 0)", {"kind": "qed"}, min_score=0)
    expect_error("reward.components[0].transform.k: must be > 0 (got 0)",
                 {"kind": "sa", "transform": {"kind": "sigmoid", "low": 1, "high": 2, "k": 0}})  # fmt: skip
    expect_error("reward.components[0].timeout: must be > 0 (got -5)",
                 {"kind": "python", "function": "math:fsum", "timeout": -5})  # fmt: skip
    expect_error("reward.components: at least one component needs a weight > 0", {"kind": "qed", "weight": 0})


def test_unknown_transform_lists_allowed_ones() -> None:
    expect_error(
        "reward.components[0].transform.kind: unknown value 'sigmod'; allowed: identity, sigmoid, "
        "reverse_sigmoid, step, window, double_sigmoid, linear",
        {"kind": "sa", "transform": {"kind": "sigmod", "low": 1, "high": 2}},
    )


def test_unknown_component_kind_lists_allowed_ones() -> None:
    expect_error(
        "reward.components[0].kind: unknown value 'logP'; allowed: proxy, qed, sa, mw, logp, tpsa, pains, alerts, "
        "similarity, python, command",
        {"kind": "logP"},
    )


def test_unknown_aggregation_lists_allowed_ones() -> None:
    expect_error("reward.aggregation: unknown value 'harmonic'; allowed: geometric, arithmetic",
                 {"kind": "qed"}, aggregation="harmonic")  # fmt: skip


def test_transform_required_for_unbounded_kinds() -> None:
    expect_error("reward.components[0].transform: required for kind 'sa'", {"kind": "sa"})


def test_duplicate_names_rejected() -> None:
    expect_error("reward.components[1].name: duplicate name 'qed'", {"kind": "qed"}, {"kind": "qed"})


def test_bad_name_rejected() -> None:
    expect_error("reward.components[0].name: must start with a letter", {"kind": "qed", "name": "my score"})
    expect_error("reward.components[0].name: 'score' is reserved", {"kind": "qed", "name": "score"})
    expect_error("reward.components[0].name: 'qed_raw' is reserved", {"kind": "qed", "name": "qed_raw"})


def test_missing_proxy_file_is_named(tmp_path) -> None:
    expect_error(
        f"reward.components[0].path: proxy file not found: {tmp_path / 'models' / 'nope.pt'}",
        {"kind": "proxy", "path": "models/nope.pt", "transform": {"kind": "sigmoid", "low": 5, "high": 9}},
        base_dir=tmp_path,
    )


def test_proxy_needs_exactly_one_of_path_or_model(fake_proxy) -> None:
    sig = {"kind": "sigmoid", "low": 5, "high": 9}
    expect_error("reward.components[0]: give exactly one of 'path'", {"kind": "proxy", "transform": sig})
    expect_error("reward.components[0].model: must have a predict(smiles) method",
                 {"kind": "proxy", "model": object(), "transform": sig})  # fmt: skip
    reward = build({"kind": "proxy", "model": fake_proxy, "kappa": 1.0, "transform": sig})
    assert reward.score(["CCCC"]).raw["proxy"][0] == pytest.approx(4.0 + 1.0 - 0.5)


def test_similarity_reference_file(tmp_path) -> None:
    expect_error(
        f"reward.components[0].file: reference file not found: {tmp_path / 'refs.smi'}",
        {"kind": "similarity", "file": "refs.smi"},
        base_dir=tmp_path,
    )
    (tmp_path / "refs.smi").write_text("# references\nCCO ethanol\n\nc1ccccc1O phenol\n")
    reward = Reward.from_config(
        {"components": [{"kind": "similarity", "file": "refs.smi"}]}, base_dir=tmp_path
    )
    assert reward.score(["Oc1ccccc1"]).score[0] == pytest.approx(1.0)
    (tmp_path / "bad.smi").write_text("CCO\nC1CC\n")
    expect_error("reward.components[0].file: invalid reference SMILES 'C1CC'",
                 {"kind": "similarity", "file": "bad.smi"}, base_dir=tmp_path)  # fmt: skip
    expect_error("reward.components[0]: give exactly one of 'smiles'", {"kind": "similarity"})


def test_from_toml_reads_reward_table_and_resolves_paths_from_its_folder(tmp_path) -> None:
    (tmp_path / "refs.smi").write_text("c1ccccc1O\n")
    (tmp_path / "run.toml").write_text(
        """
[run]
steps = 10

[reward]
aggregation = "arithmetic"
min_score = 1e-3

[[reward.components]]
name = "sim"
kind = "similarity"
file = "refs.smi"
weight = 1.0

[[reward.components]]
kind = "sa"
weight = 1.0
transform = { kind = "reverse_sigmoid", low = 2.0, high = 6.0 }
"""
    )
    reward = Reward.from_toml(tmp_path / "run.toml")
    assert reward.names == ["sim", "sa"] and reward.min_score == 1e-3
    assert reward.score(["Oc1ccccc1"]).raw["sim"][0] == pytest.approx(1.0)


def test_from_toml_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(MolgfnError, match="config file not found"):
        Reward.from_toml(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[reward\n")
    with pytest.raises(MolgfnError, match="cannot read config file .*bad.toml"):
        Reward.from_toml(tmp_path / "bad.toml")
    (tmp_path / "none.toml").write_text("[run]\nsteps = 1\n")
    with pytest.raises(MolgfnError, match=r"none.toml: no \[reward\] table"):
        Reward.from_toml(tmp_path / "none.toml")
