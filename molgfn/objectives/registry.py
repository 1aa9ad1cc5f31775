"""The registry of training objectives: one entry per objective, read by config validation, the builder,
``molgfn verify`` and the dashboard.

An entry names the class (imported only when a run builds it, so that validating a config or printing
``--help`` needs no torch), whether the objective is on-policy (it learns only from batches its current
policy sampled: no exploration, replay or ``train.sample_ahead``), whether it needs rewards of partial
molecules, and which config fields are its constructor's options. The classes read their flags from
here (``class TrajectoryBalance(Objective, registered="tb")``), so each fact is stated once. A third-party
objective registers itself with :func:`register_objective`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from molgfn.errors import MolgfnError


@dataclass(frozen=True)
class ObjectiveSpec:
    """An objective: ``name`` (the ``objective.name`` value), ``target`` (``"module:Class"``), a title,
    ``on_policy``, ``partial_rewards`` (needs R of every visited state) and ``options``: constructor
    keyword -> config field (``"objective.subtb_lambda"``, ``"run.seed"``)."""

    name: str
    target: str
    title: str
    on_policy: bool = False
    partial_rewards: bool = False
    options: Mapping[str, str] = field(default_factory=dict)
    needs_sampler: bool = False  # the constructor takes the run's sampler (backward rollouts)

    def load(self) -> type:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def kwargs(self, cfg: Any) -> dict[str, Any]:
        """The constructor's options, read from a validated run config."""
        out = {}
        for keyword, dotted in self.options.items():
            section, name = dotted.split(".")
            out[keyword] = getattr(getattr(cfg, section), name)
        return out


OBJECTIVES: dict[str, ObjectiveSpec] = {}


def register_objective(spec: ObjectiveSpec) -> ObjectiveSpec:
    if spec.name in OBJECTIVES and OBJECTIVES[spec.name] != spec:
        raise MolgfnError(f"objective {spec.name!r} is registered twice")
    OBJECTIVES[spec.name] = spec
    return spec


def objective_spec(name: str) -> ObjectiveSpec:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise MolgfnError(f"objective.name: must be one of {', '.join(OBJECTIVES)} (got {name!r})") from None


_PG = {"critic_lr": "objective.critic_lr"}
for _spec in (
    ObjectiveSpec("tb", "molgfn.objectives.tb:TrajectoryBalance", "trajectory balance"),
    ObjectiveSpec("db", "molgfn.objectives.db:DetailedBalance", "detailed balance"),
    ObjectiveSpec(
        "subtb",
        "molgfn.objectives.subtb:SubTrajectoryBalance",
        "sub-trajectory balance",
        options={"lam": "objective.subtb_lambda"},
    ),
    ObjectiveSpec(
        "fldb",
        "molgfn.objectives.db:ForwardLookingDB",
        "forward-looking detailed balance",
        partial_rewards=True,
    ),
    ObjectiveSpec(
        "rlgfn",
        "molgfn.objectives.rlgfn:RLGFN",
        "RL-GFN (policy gradients with a critic)",
        on_policy=True,
        needs_sampler=True,
        options={
            "gae_lambda": "objective.gae_lambda",
            **_PG,
            "trpo": "objective.trpo",
            "trpo_max_kl": "objective.trpo_max_kl",
            "coupled_backward": "objective.coupled_backward",
        },
    ),
    ObjectiveSpec(
        "entppo",
        "molgfn.objectives.entppo:EntPPO",
        "Ent-PPO (entropy-regularised PPO)",
        on_policy=True,
        options={
            "gae_lambda": "objective.ent_gae_lambda",
            **_PG,
            "epochs": "objective.ppo_epochs",
            "minibatches": "objective.ppo_minibatches",
            "clip": "objective.ppo_clip",
            "value_head": "objective.ppo_value_head",
            "value_coef": "objective.ppo_value_coef",
            "seed": "run.seed",
        },
    ),
):
    register_objective(_spec)
