"""A trajectory batch evaluated by the policy: log P_F, log P_B, flows and log Z of every visited state.

Objectives start their losses from :func:`evaluate`; the likelihood estimate of
:class:`molgfn.sampling.model.SamplingModel` uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from molgfn.nn.policy import FragmentPolicy, PolicyOutput
from molgfn.sampling.sampler import Trajectories


@dataclass
class Evaluated:
    """Per-state tensors of a trajectory batch under the current policy (rows as in ``Trajectories``)."""

    out: PolicyOutput
    log_pf: Tensor  # log π(a_t|s_t)
    log_pb: Tensor  # log P_B(s_t|s_{t+1}) of each non-stop transition, 0 at STOP
    log_flow: Tensor  # log F(s_t) (the flow head)
    log_z: Tensor  # (B,) log Z(β) from the log Z head
    traj: Tensor
    is_last: Tensor
    next_index: Tensor
    log_reward: Tensor  # (B,)


def evaluate(policy: FragmentPolicy, trajs: Trajectories, learned_backward: bool) -> Evaluated:
    """One batched forward pass over every visited state."""
    device = next(policy.parameters()).device
    beta_state = torch.as_tensor(trajs.beta[trajs.traj], dtype=torch.float32, device=device)
    out = policy(trajs.states, beta_state)
    log_pf = out.log_prob(trajs.actions, trajs.target)
    nxt = torch.as_tensor(trajs.next_index(), device=device)
    is_stop = torch.as_tensor(trajs.actions.kind == 0, device=device)
    if learned_backward:
        # at s_{t+1} the node just added is the last one, and it is a leaf
        pb_next = out.log_pb(trajs.states.n_nodes - 1)
        log_pb = torch.where(is_stop, torch.zeros_like(pb_next), pb_next[nxt])
    else:
        log_pb = torch.as_tensor(trajs.log_pb_uniform, dtype=torch.float32, device=device)
    beta = torch.as_tensor(trajs.beta, dtype=torch.float32, device=device)
    return Evaluated(
        out=out,
        log_pf=log_pf,
        log_pb=log_pb,
        log_flow=out.log_flow,
        log_z=policy.log_z(beta),
        traj=torch.as_tensor(trajs.traj, device=device),
        is_last=torch.as_tensor(trajs.is_last, device=device),
        next_index=nxt,
        log_reward=torch.as_tensor(trajs.log_reward, dtype=torch.float32, device=device),
    )


def per_trajectory_sum(values: Tensor, traj: Tensor, n: int) -> Tensor:
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add(0, traj, values)
