"""The run config: validation messages name the file and the field, TOML round-trips, --set overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from molgfn.config import (
    SECTIONS,
    Config,
    config_to_toml,
    field_help,
    load_config,
    parse_override,
)
from molgfn.errors import MolgfnError

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.toml"
QED_ONLY = "[reward]\n[[reward.components]]\nkind = 'qed'\n"


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text + "\n" + ("" if "[reward" in text else QED_ONLY))
    return path


def error_of(path: Path | None, overrides: list[str] | None = None) -> str:
    with pytest.raises(MolgfnError) as info:
        load_config(path, overrides or [])
    return str(info.value)


def test_out_of_range_names_file_and_field(tmp_path):
    path = write(tmp_path, "[train]\nbatch_size = 0")
    assert error_of(path) == "config.toml: train.batch_size: must be >= 1 (got 0)"


def test_bad_choice_lists_the_choices(tmp_path):
    path = write(tmp_path, "[objective]\nname = 'tbb'")
    assert (
        error_of(path)
        == "config.toml: objective.name: must be one of tb, db, subtb, fldb, rlgfn, entppo (got 'tbb')"
    )


def test_unknown_key_suggests_the_closest(tmp_path):
    message = error_of(write(tmp_path, "[train]\nbatchsize = 3"))
    assert message.startswith("config.toml: train.batchsize: unknown key; did you mean 'batch_size'?")


def test_unknown_table_suggests_the_closest(tmp_path):
    message = error_of(write(tmp_path, "[trian]\nsteps = 3"))
    assert message.startswith("config.toml: trian: unknown table; did you mean 'train'?")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[train]\nsteps = 1.5", "train.steps: must be an integer, got float 1.5"),
        ("[train]\nsteps = true", "train.steps: must be an integer, got boolean True"),
        ("[train]\nlr = 'fast'", "train.lr: must be a number, got string 'fast'"),
        (
            "[model]\nlearned_backward = 1",
            "model.learned_backward: must be a boolean (true or false), got integer 1",
        ),
        ("[run]\nname = 3", "run.name: must be a string, got integer 3"),
        ("[run]\nname = '../evil'", "run.name: must use only letters"),
        ("[train]\nepsilon = 1.5", "train.epsilon: must be <= 1 (got 1.5)"),
        ("[env]\nmax_frags = 21", "env.max_frags: must be <= 20 (got 21)"),
        ("[train]\nbeta_min = 0", "train.beta_min: must be > 0 (got 0)"),
        ("[train]\nbeta_min = 9.0\nbeta_max = 8.0", "train.beta_min: must be <= train.beta_max (got 9 > 8)"),
        ("[train]\nreplay_fraction = 0.5", "train.replay_fraction: needs train.replay_size > 0"),
        ("train = 3", "train: must be a table, got integer"),
    ],
)
def test_wrong_types_and_ranges_name_the_field(tmp_path, line, expected):
    assert error_of(write(tmp_path, line)).startswith(f"config.toml: {expected}")


def test_integer_accepted_for_float(tmp_path):
    cfg = load_config(write(tmp_path, "[train]\nlr = 1\nbeta_min = 2\nbeta_max = 4"))
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert (cfg.train.beta_min, cfg.train.beta_max) == (2.0, 4.0)


def test_missing_vocab_file_names_field_and_file(tmp_path):
    message = error_of(write(tmp_path, "[env]\nvocab = 'no_such_vocab.txt'"))
    assert message.startswith("config.toml: env.vocab:")
    assert str(tmp_path / "no_such_vocab.txt") in message and "not found" in message


def test_missing_proxy_file_names_field_and_file(tmp_path):
    text = "[reward]\n[[reward.components]]\nkind = 'proxy'\npath = 'models/missing.pt'\ntransform = {kind = 'sigmoid', low = 5.0, high = 9.0}\n"
    message = error_of(write(tmp_path, text))
    assert message.startswith("config.toml: reward.components[0].path: proxy file not found")
    assert str(tmp_path / "models" / "missing.pt") in message


def test_bad_reward_table_is_reported_by_the_reward_validation(tmp_path):
    text = "[reward]\naggregation = 'median'\n[[reward.components]]\nkind = 'qed'\n"
    assert error_of(write(tmp_path, text)).startswith("config.toml: reward.aggregation:")


def test_missing_config_file_and_bad_toml(tmp_path):
    assert "config file not found" in error_of(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nsteps = 1\n")
    assert error_of(bad).startswith(f"{bad}: not valid TOML")


def test_bad_config_fails_before_any_training(tmp_path):
    path = write(tmp_path, "[train]\nbatch_size = 0")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "molgfn",
            "train",
            "--config",
            str(path),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "molgfn: error: config.toml: train.batch_size: must be >= 1 (got 0)"
    assert not (tmp_path / "runs").exists()


def test_toml_round_trip(tmp_path):
    cfg = load_config(TINY, ["train.steps=7", "train.lr=0.5", "model.learned_backward=true"])
    text = config_to_toml(cfg)
    again = load_config(write(tmp_path, text, "saved.toml"))
    assert again == cfg
    assert config_to_toml(again) == text


def test_saved_config_holds_every_field():
    text = config_to_toml(load_config(TINY))
    for dotted in field_help():
        section, name = dotted.split(".")
        assert f"\n{name} = " in text.split(f"[{section}]", 1)[1], dotted


def test_shipped_default_config_is_the_dataclass_defaults():
    # the proxy of the default reward may not be trained yet: check the fields, not the files
    cfg = load_config(REPO / "configs" / "default.toml", check_files=False)
    assert cfg == Config()


def test_every_field_has_a_help_string():
    helps = field_help()
    assert set(SECTIONS) == {"run", "env", "model", "objective", "train"}
    from dataclasses import fields

    assert len(helps) == sum(len(fields(cls)) for cls in SECTIONS.values())
    assert all(h.strip() for h in helps.values())


def test_set_overrides_parse_toml_values_and_fall_back_to_strings():
    assert parse_override("train.steps=500") == (["train", "steps"], 500)
    assert parse_override("train.lr = 3e-4") == (["train", "lr"], 3e-4)
    assert parse_override("model.learned_backward=true") == (["model", "learned_backward"], True)
    assert parse_override("objective.name=subtb") == (["objective", "name"], "subtb")
    assert parse_override('run.name="x y"') == (["run", "name"], "x y")
    with pytest.raises(MolgfnError, match="expected KEY=VALUE"):
        parse_override("train.steps")


def test_set_overrides_apply_and_errors_name_set():
    cfg = load_config(TINY, ["train.steps=500", "objective.name=db", "run.seed=3"])
    assert (cfg.train.steps, cfg.objective.name, cfg.run.seed) == (500, "db", 3)
    assert error_of(TINY, ["train.batch_size=0"]) == "--set: train.batch_size: must be >= 1 (got 0)"
    assert error_of(TINY, ["train.steps=many"]).startswith(
        "--set: train.steps: must be an integer, got string 'many'"
    )
    assert error_of(TINY, ["trian.steps=3"]).startswith("--set: trian: unknown table; did you mean 'train'?")


def test_sample_ahead_is_refused_for_on_policy_objectives():
    for name in ("entppo", "rlgfn"):
        message = error_of(TINY, [f"objective.name={name}", "train.sample_ahead=true"])
        assert message.startswith("--set: train.sample_ahead: needs an off-policy objective"), message
        assert name in message
    assert load_config(TINY, ["objective.name=tb", "train.sample_ahead=true"]).train.sample_ahead


def test_overrides_without_a_file_use_defaults():
    cfg = load_config(None, ["env.vocab=tiny", "reward.components=[{kind='qed'}]"])
    assert cfg.env.vocab == "tiny" and cfg.train.steps == Config().train.steps


def test_relative_paths_are_stored_absolute(tmp_path):
    (tmp_path / "refs.smi").write_text("CCO\nc1ccccc1\n")
    (tmp_path / "vocab.txt").write_text((REPO / "data" / "vocab" / "tiny.txt").read_text())
    text = "[env]\nvocab = 'vocab.txt'\n[reward]\n[[reward.components]]\nkind = 'similarity'\nfile = 'refs.smi'\n"
    cfg = load_config(write(tmp_path, text))
    assert cfg.env.vocab == str(tmp_path / "vocab.txt")
    assert cfg.reward["components"][0]["file"] == str(tmp_path / "refs.smi")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert load_config(write(elsewhere, config_to_toml(cfg))) == cfg


def test_a_reward_override_without_a_reward_table_edits_the_default_reward():
    from molgfn.config import load_config
    from molgfn.reward import DEFAULT_REWARD_CONFIG

    cfg = load_config(None, ["reward.workers=2"], check_files=False)
    assert cfg.reward["workers"] == 2
    assert cfg.reward["components"] == DEFAULT_REWARD_CONFIG["components"]
