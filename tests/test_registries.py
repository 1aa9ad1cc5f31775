"""One source of truth per fact: the objectives and the reward component kinds are registries that config
validation, the builder, `molgfn verify` and the reward read; the shipped resources resolve by name; and
generation builds the policy only."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from molgfn.config import ObjectiveSection, config_from_dict, load_config
from molgfn.errors import MolgfnError
from molgfn.objectives.registry import OBJECTIVES, ObjectiveSpec, register_objective

REPO = Path(__file__).resolve().parents[1]


def test_every_objective_option_belongs_to_a_registered_objective():
    options = {dotted for spec in OBJECTIVES.values() for dotted in spec.options.values()}
    section = {f"objective.{f.name}" for f in fields(ObjectiveSection) if f.name != "name"}
    assert section <= options, f"config fields no objective reads: {section - options}"
    assert {d for d in options if d.startswith("objective.")} <= section


def test_the_classes_take_their_flags_from_the_registry():
    for name, spec in OBJECTIVES.items():
        cls = spec.load()
        assert cls.name == name
        assert cls.on_policy == spec.on_policy
        assert cls.needs_state_rewards == spec.partial_rewards
    assert {n for n, s in OBJECTIVES.items() if s.on_policy} == {"rlgfn", "entppo"}
    assert {n for n, s in OBJECTIVES.items() if s.partial_rewards} == {"fldb"}


@pytest.fixture
def extra_objective():
    spec = register_objective(
        ObjectiveSpec("tb_again", "molgfn.objectives.tb:TrajectoryBalance", "trajectory balance, again")
    )
    yield spec
    del OBJECTIVES[spec.name]


def test_a_registered_objective_is_validated_built_and_verified(extra_objective):
    from molgfn.objectives.tb import TrajectoryBalance
    from molgfn.training.algorithm import GFlowNet, hashed_score
    from molgfn.training.verify import verify_config

    cfg = config_from_dict({"objective": {"name": "tb_again"}, "env": {"vocab": "tiny"}}, check_files=False)
    assert cfg.objective.name == "tb_again"
    gfn = GFlowNet(verify_config("tb_again", steps=1), score_fn=hashed_score)
    assert type(gfn.objective) is TrajectoryBalance
    with pytest.raises(MolgfnError, match=r"objective\.name: must be one of .*tb_again"):
        config_from_dict({"objective": {"name": "nope"}}, check_files=False)


def test_on_policy_rules_follow_the_registry(extra_objective):
    from molgfn.training.verify import verify_config

    assert verify_config("tb_again", 1).train.epsilon > 0  # off-policy: light exploration
    assert verify_config("entppo", 1).train.epsilon == 0
    with pytest.raises(MolgfnError, match="needs an off-policy objective"):
        config_from_dict({"objective": {"name": "rlgfn"}, "train": {"sample_ahead": True}}, check_files=False)
    cfg = config_from_dict(
        {"objective": {"name": "tb_again"}, "train": {"sample_ahead": True}}, check_files=False
    )
    assert cfg.train.sample_ahead


def test_reward_kinds_come_from_their_registry(tmp_path):
    from molgfn.reward import COMPONENT_KINDS, Reward, register_kind

    assert list(COMPONENT_KINDS)[:3] == ["proxy", "qed", "sa"] and {"python", "command"} <= set(
        COMPONENT_KINDS
    )

    class Length:
        kind = "length"

        def compute(self, batch):
            import numpy as np

            return np.array([len(s) / 100 for s in batch.smiles])

    register_kind("length", unit_interval=True)(lambda table, name, base_dir: Length())
    try:
        reward = Reward.from_config({"components": [{"kind": "length"}]})
        assert reward.score(["CCO", "CCCCCC"]).raw["length"].tolist() == [0.03, 0.06]
    finally:
        del COMPONENT_KINDS["length"]
    with pytest.raises(MolgfnError, match="unknown value 'length'"):
        Reward.from_config({"components": [{"kind": "length"}]})


def test_shipped_names_resolve_to_resources_and_paths_still_work(tmp_path, monkeypatch):
    from molgfn.chem.vocab import load_vocabulary
    from molgfn.resources import DEFAULT_GENERATOR, DEFAULT_PROXY, resolve

    monkeypatch.chdir(tmp_path)
    by_name = load_config("tiny")
    by_path = load_config(REPO / "configs" / "tiny.toml")
    assert by_name == by_path
    assert len(load_vocabulary("tiny").fragments) == 4
    assert resolve("default", {"default": DEFAULT_GENERATOR}) == DEFAULT_GENERATOR
    reward = load_config(
        "tiny", ["reward.components=[{kind='proxy', path='default', transform={kind='identity'}}]"]
    )
    assert Path(reward.reward["components"][0]["path"]) == DEFAULT_PROXY
    (tmp_path / "tiny").write_text("")  # a file of that name in the working folder wins
    assert resolve("tiny", {"tiny": Path("/nowhere")}) == Path("tiny")


def test_generation_builds_the_policy_and_no_training_state(monkeypatch):
    from molgfn.candidates.generate import load_generator
    from molgfn.objectives.base import Objective
    from molgfn.sampling.model import SamplingModel

    def refuse(*args, **kwargs):
        raise AssertionError("generation built an objective")

    monkeypatch.setattr(Objective, "__init__", refuse)
    monkeypatch.setattr("torch.optim.Adam.__init__", refuse)
    generator = load_generator("default")
    assert isinstance(generator.model, SamplingModel)
    table, report = generator.generate(8, seed=0)
    assert len(table) == 8 and report.produced == 8
