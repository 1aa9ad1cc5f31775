"""What the trainer and an algorithm agree on: an :class:`Algorithm` trains one :class:`StepOutput` per call.

The trainer (:mod:`molgfn.training.trainer`) drives any object with this protocol; the GFlowNet of
:mod:`molgfn.training.algorithm` is one. Neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

# the GFlowNet of molgfn.training.algorithm, named by string: the trainer depends on this protocol only
DEFAULT_ALGORITHM = "molgfn.training.algorithm:build_algorithm"
# factories that older runs recorded (store meta "algorithm"), and where they live now
MOVED_ALGORITHMS = {"molgfn.gflownet:build_algorithm": DEFAULT_ALGORITHM}


@dataclass
class StepOutput:
    """What one training step reports.

    ``metrics``: loss, log_z, reward_mean, reward_max, sample_time (seconds spent sampling) and any
    objective-specific diagnostics (floats; NaN is stored as NULL). ``smiles``: the terminal molecules
    of the batch, ``reward`` their [0, 1] score, ``components`` the transformed reward components."""

    metrics: dict[str, float]
    n_trajectories: int
    smiles: list[str] = field(default_factory=list)
    reward: np.ndarray = field(default_factory=lambda: np.zeros(0))
    components: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class Algorithm(Protocol):
    """A trainable sampler: one call of :meth:`train_step` samples a batch and updates the model(s)."""

    def train_step(self, step: int) -> StepOutput: ...

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: model(s), optimiser(s), schedulers, replay buffer and
        any private random generator (plain python / numpy / torch objects)."""
        ...

    def load_state_dict(self, state: dict) -> None: ...


AlgorithmFactory = Callable[[Any], Algorithm]  # a validated run config -> an algorithm
