"""``molgfn verify``: train on a tiny enumerable vocabulary and report the exact total variation.

The reward is fixed and pseudo-random (:func:`molgfn.training.algorithm.hashed_score`), β = 1, so the target
R(x)/Z is known exactly over the enumerated terminal objects (docs/architecture.md, "Correctness").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from molgfn.chem.enumerate import (
    enumerate_states,
    exact_terminal_distribution,
    target_distribution,
    total_variation,
)
from molgfn.chem.tree import tree_smiles
from molgfn.config import config_from_dict
from molgfn.objectives.registry import objective_spec
from molgfn.training.algorithm import GFlowNet, hashed_score


@dataclass
class VerifyResult:
    objective: str
    steps: int
    tv_initial: float
    tv_final: float
    n_terminal: int
    seconds: float
    history: list[tuple[int, float]]


def verify_config(
    objective: str, steps: int, vocab: str = "tiny", max_frags: int = 3, seed: int = 0, **overrides
):
    """A validated run config for exact checks: a small model, β = 1, light exploration for the off-policy
    objectives. ``overrides`` are dotted fields, e.g. ``**{"train.lr": 1e-3}``."""
    on_policy = objective_spec(objective).on_policy
    data = {
        "run": {"seed": seed},
        "env": {"vocab": vocab, "max_frags": max_frags},
        "model": {"hidden": 64, "layers": 2, "beta_embedding": 8},
        "objective": {"name": objective, "critic_lr": 3e-3},
        "train": {
            "steps": steps,
            "batch_size": 64,
            "lr": 3e-3,
            "lr_logz": 0.1,
            "beta_min": 1.0,
            "beta_max": 1.0,
            "epsilon": 0.0 if on_policy else 0.05,
        },
    }
    for key, value in overrides.items():
        section, name = key.split(".")
        data[section][name] = value
    return config_from_dict(data, source="verify", check_files=False)


def exact_tv(gfn: GFlowNet, space, beta: float = 1.0) -> float:
    """Exact total variation between the policy's terminal distribution and R/Z, R(x) = score(x)^β.

    The target has no symmetry weight: W only enters training, to make per-action policies exact."""
    p = exact_terminal_distribution(space, gfn.exact_policy(beta))
    target = target_distribution(
        space, lambda t: beta * np.log(hashed_score([tree_smiles(t, space.vocab)])[0][0])
    )
    return total_variation(p, target)


def verify(cfg, eval_every: int = 50, progress: bool = False) -> VerifyResult:
    start = time.perf_counter()
    gfn = GFlowNet(cfg, score_fn=hashed_score)
    space = enumerate_states(gfn.vocab, cfg.env.max_frags)
    tv0 = exact_tv(gfn, space)
    history = [(0, tv0)]
    bar = tqdm(range(1, cfg.train.steps + 1), desc=f"verify {cfg.objective.name}", disable=not progress)
    for step in bar:  # steps count from 1, as in the trainer
        gfn.train_step(step)
        if step % eval_every == 0 or step == cfg.train.steps:
            history.append((step, exact_tv(gfn, space)))
            bar.set_postfix(tv=f"{history[-1][1]:.4f}")
    torch.set_num_threads(1)
    return VerifyResult(
        cfg.objective.name,
        cfg.train.steps,
        tv0,
        history[-1][1],
        len(space.terminal_keys),
        time.perf_counter() - start,
        history,
    )
