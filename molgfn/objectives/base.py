"""The interface shared by every training objective, and the batched evaluation they start from.

An objective turns a :class:`~molgfn.sampling.sampler.Trajectories` batch into parameter updates. Loss-based
objectives (TB, DB, SubTB, FL-DB) implement :meth:`Objective.loss`; the default :meth:`Objective.update`
then takes one optimiser step. Policy-gradient objectives override :meth:`Objective.update` (several
epochs, a critic, a trust region). Every objective returns a dict of diagnostics that the trainer logs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from molgfn.nn.policy import FragmentPolicy
from molgfn.objectives.registry import OBJECTIVES
from molgfn.sampling.evaluate import Evaluated, evaluate, per_trajectory_sum
from molgfn.sampling.sampler import Trajectories

__all__ = ["Evaluated", "Objective", "evaluate", "mean", "per_trajectory_sum"]


class Objective:
    """Base class: ``loss`` for balance objectives; ``update`` performs the optimisation step."""

    name = "objective"
    needs_state_rewards = False  # rewards of partial molecules (from the registry's partial_rewards)
    on_policy = False

    def __init_subclass__(cls, registered: str | None = None, **kwargs) -> None:
        """``class X(Objective, registered="x")`` takes its name and flags from the registry entry "x"."""
        super().__init_subclass__(**kwargs)
        if registered is not None:
            spec = OBJECTIVES[registered]
            cls.name = spec.name
            cls.on_policy = spec.on_policy
            cls.needs_state_rewards = spec.partial_rewards

    def __init__(self, policy: FragmentPolicy, learned_backward: bool = False, grad_clip: float = 10.0):
        self.policy = policy
        self.learned_backward = learned_backward
        self.grad_clip = grad_clip

    def loss(self, trajs: Trajectories) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def update(self, trajs: Trajectories, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        loss, info = self.loss(trajs)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{self.name}: non-finite loss {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.grad_clip)
        optimizer.step()
        info.update(loss=float(loss.detach()), grad_norm=float(norm))
        return info

    # extra state (critics, their optimisers) for checkpoints
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def mean(x: Tensor | np.ndarray) -> float:
    return float(x.float().mean()) if isinstance(x, Tensor) else float(np.mean(x))
