"""Shared policy-gradient machinery: value networks, generalised advantage estimation, diagnostics."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from molgfn.nn.policy import FragmentPolicy


def make_critic(policy: FragmentPolicy) -> FragmentPolicy:
    """A value network of the policy's architecture (only its trunk and flow head are used)."""
    critic = FragmentPolicy(
        policy.env,
        hidden=policy.hidden,
        layers=len(policy.convs),
        beta_bins=policy.beta_bins,
        beta_scale=policy.beta_scale,
    )
    return critic.to(next(policy.parameters()).device)


def padded(values: Tensor, traj: Tensor, position: Tensor, n: int, length: int) -> Tensor:
    out = torch.zeros(n, length, dtype=values.dtype, device=values.device)
    return out.index_put((traj, position), values)


def gae(
    delta: Tensor, traj: Tensor, position: Tensor, lengths: np.ndarray, lam: float, reverse: bool = False
) -> Tensor:
    """Generalised advantage estimation with γ = 1: A_t = Σ_k λ^k δ_{t+k} along each trajectory.

    Rows are (trajectory, position) pairs. With ``reverse`` the trajectory runs from its last position to
    its first (backward rollouts), so A_t = Σ_k λ^k δ_{t−k}.
    """
    n, length = len(lengths), int(lengths.max())
    grid = padded(delta, traj, position, n, length)
    adv = torch.zeros_like(grid)
    running = torch.zeros(n, dtype=delta.dtype, device=delta.device)
    steps = range(length) if reverse else range(length - 1, -1, -1)
    for t in steps:
        running = grid[:, t] + lam * running
        adv[:, t] = running
    return adv[traj, position]


def explained_variance(prediction: Tensor, target: Tensor) -> float:
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - prediction).var() / var)
