"""A small deterministic Algorithm for the trainer tests (stands in for molgfn.training.algorithm).

A linear model fitted by SGD with momentum (so optimiser state matters on resume) to a random linear
target; it draws from the python, numpy and torch global generators (so RNG restoring matters) and
"samples" molecules from a fixed list. Environment knobs: TOY_STEP_SECONDS (sleep per step),
TOY_FAIL_AT (raise at that step)."""

from __future__ import annotations

import os
import random
import time

import numpy as np
import torch

from molgfn.config import Config
from molgfn.training.trainer import StepOutput

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "COc1ccccc1", "CC(C)O", "c1ccncc1", "OCCO"]


class ToyAlgorithm:
    def __init__(self, cfg: Config) -> None:
        self.batch_size = cfg.train.batch_size
        self.model = torch.nn.Linear(4, 1)
        self.log_z = torch.nn.Parameter(torch.zeros(()))
        self.opt = torch.optim.SGD([*self.model.parameters(), self.log_z], lr=cfg.train.lr, momentum=0.9)
        self.target = torch.randn(4)
        self.delay = float(os.environ.get("TOY_STEP_SECONDS", "0"))
        self.fail_at = int(os.environ.get("TOY_FAIL_AT", "0"))

    def train_step(self, step: int) -> StepOutput:
        if step == self.fail_at:
            raise RuntimeError(f"toy failure at step {step}")
        start = time.perf_counter()
        x = torch.randn(self.batch_size, 4)
        y = x @ self.target + self.log_z.detach() * 0
        loss = ((self.model(x).squeeze(-1) + self.log_z - y) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        idx = np.random.randint(len(SMILES), size=self.batch_size)  # noqa: NPY002 - global RNG on purpose
        reward = np.random.rand(self.batch_size) * random.random()  # noqa: NPY002
        if self.delay:
            time.sleep(self.delay)
        return StepOutput(
            metrics={
                "loss": loss.item(),
                "log_z": self.log_z.item(),
                "sample_time": time.perf_counter() - start,
            },
            n_trajectories=self.batch_size,
            smiles=[SMILES[i] for i in idx],
            reward=reward,
            components={"qed": reward**0.5, "mw": 1 - reward},
        )

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "log_z": self.log_z.detach().clone(),
            "opt": self.opt.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        with torch.no_grad():
            self.log_z.copy_(state["log_z"])
        self.opt.load_state_dict(state["opt"])


def build_toy(cfg: Config) -> ToyAlgorithm:
    return ToyAlgorithm(cfg)


def build_broken(cfg: Config) -> ToyAlgorithm:
    from molgfn.errors import MolgfnError

    raise MolgfnError("model.hidden: the toy refuses to be built")
