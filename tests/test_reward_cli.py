"""``molgfn reward score`` and ``molgfn reward show-config``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molgfn.cli import main

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

CONFIG = """
[reward]
aggregation = "geometric"

[[reward.components]]
kind = "qed"
weight = 1.0

[[reward.components]]
name = "weight"
kind = "mw"
weight = 0.5
transform = { kind = "window", low = 100.0, high = 400.0, softness = 20.0 }

[[reward.components]]
kind = "pains"
weight = 1.0
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(CONFIG)
    return path


def test_score_smi_file_writes_every_component(tmp_path, config, capsys) -> None:
    (tmp_path / "in.smi").write_text(
        "CC(=O)Oc1ccccc1C(=O)O aspirin\nO=C1NC(=S)SC1=Cc1ccccc1 rhodanine\nnope bad\n"
    )
    out = tmp_path / "out" / "scored.csv"
    rc = main(
        [
            "reward",
            "score",
            "--config",
            str(config),
            str(tmp_path / "in.smi"),
            "--out",
            str(out),
            "--beta",
            "4",
        ]
    )
    assert rc == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == [
        "smiles", "name", "valid", "score", "qed_raw", "qed", "weight_raw", "weight", "pains_raw", "pains", "log_reward",
    ]  # fmt: skip
    assert frame["name"].tolist() == ["aspirin", "rhodanine", "bad"]
    assert frame["valid"].tolist() == [True, True, False]
    assert frame["pains"].tolist() == [1.0, 0.0, 0.0]
    assert frame["score"].iloc[0] > 0.3 and frame["score"].iloc[1] == 0.0 and frame["score"].iloc[2] == 0.0
    np.testing.assert_allclose(frame["log_reward"], 4 * np.log(np.maximum(frame["score"], 1e-4)))
    assert "scored 3 molecules (1 invalid)" in capsys.readouterr().out


def test_score_csv_keeps_input_columns(tmp_path, config) -> None:
    pd.DataFrame({"ID": ["a", "b"], "SMILES": ["CCO", "c1ccccc1"]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    assert (
        main(["reward", "score", "--config", str(config), str(tmp_path / "in.csv"), "--out", str(out)]) == 0
    )
    frame = pd.read_csv(out)
    assert frame["ID"].tolist() == ["a", "b"] and frame["SMILES"].tolist() == ["CCO", "c1ccccc1"]
    assert frame["qed_raw"].iloc[1] == pytest.approx(0.443, abs=0.005)


def test_refuses_to_overwrite_without_force(tmp_path, config, capsys) -> None:
    (tmp_path / "in.smi").write_text("CCO\n")
    out = tmp_path / "out.csv"
    out.write_text("keep me\n")
    args = ["reward", "score", "--config", str(config), str(tmp_path / "in.smi"), "--out", str(out)]
    assert main(args) == 2
    assert "--out" in capsys.readouterr().err and out.read_text() == "keep me\n"
    assert main([*args, "--force"]) == 0
    assert pd.read_csv(out)["smiles"].tolist() == ["CCO"]


def test_user_errors_exit_2_with_a_message(tmp_path, config, capsys) -> None:
    out = str(tmp_path / "o.csv")
    assert (
        main(["reward", "score", "--config", str(config), str(tmp_path / "missing.smi"), "--out", out]) == 2
    )
    assert "input file not found" in capsys.readouterr().err
    pd.DataFrame({"mol": ["CCO"]}).to_csv(tmp_path / "in.csv", index=False)
    assert main(["reward", "score", "--config", str(config), str(tmp_path / "in.csv"), "--out", out]) == 2
    assert "no 'smiles' column" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text('[reward]\naggregation = "mean"\ncomponents = [{kind = "qed"}]\n')
    (tmp_path / "in.smi").write_text("CCO\n")
    assert (
        main(
            [
                "reward",
                "score",
                "--config",
                str(tmp_path / "bad.toml"),
                str(tmp_path / "in.smi"),
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "reward.aggregation: unknown value 'mean'" in capsys.readouterr().err


def test_show_config_prints_the_default_reward_as_toml(capsys) -> None:
    assert main(["reward", "show-config"]) == 0
    document = tomllib.loads(capsys.readouterr().out)
    assert [c["name"] for c in document["reward"]["components"]] == ["activity", "qed", "sa", "mw", "alerts"]
