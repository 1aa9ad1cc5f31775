"""Detailed balance (Bengio et al. 2023, "GFlowNet Foundations") and forward-looking DB (Pan et al. 2023,
"Better Training of GFlowNets with Local Credit and Incomplete Trajectories").

DB, per transition and at the stop transition:

    (log F(s) + log P_F(s'|s) − log F(s') − log P_B(s|s'))²,     (log F(x) + log P_F(⊤|x) − log R(x))²

FL-DB writes F(s) = F̃(s)·R(s) with R computed on the partial molecule (log R(s_0) = 0) and learns log F̃:

    (log F̃(s) + log R(s) + log P_F(s'|s) − log F̃(s') − log R(s') − log P_B(s|s'))²,   (log F̃(x) + log P_F(⊤|x))²

so F̃ = 1 at terminals. Each transition is a constraint of its own, so FL-DB learns from partial
trajectories as well. The mean over all transitions of the batch is minimised.
"""

from __future__ import annotations

import torch
from torch import Tensor

from molgfn.objectives.base import Objective, evaluate, mean
from molgfn.sampling.sampler import Trajectories


class DetailedBalance(Objective, registered="db"):
    forward_looking = False

    def loss(self, trajs: Trajectories) -> tuple[Tensor, dict[str, float]]:
        ev = evaluate(self.policy, trajs, self.learned_backward)
        log_f = ev.log_flow
        if self.forward_looking:
            if trajs.state_log_reward is None:
                raise ValueError("FL-DB needs per-state rewards: sample with state_rewards=True")
            # log F(s) = log F̃(s) + log R(s); at the stop F̃(x) = 1, so the residual is log F̃(x) + log P_F(⊤|x)
            stop_residual = ev.log_flow + ev.log_pf
            log_f = log_f + torch.as_tensor(trajs.state_log_reward, dtype=log_f.dtype, device=log_f.device)
        else:
            stop_residual = log_f + ev.log_pf - ev.log_reward[ev.traj]
        move_residual = log_f + ev.log_pf - log_f[ev.next_index] - ev.log_pb
        delta = torch.where(ev.is_last, stop_residual, move_residual)
        first = torch.as_tensor(trajs.position == 0, device=log_f.device)
        return (delta**2).mean(), {
            "log_z": mean(log_f.detach()[first]),
            "db_residual_abs": mean(delta.detach().abs()),
        }


class ForwardLookingDB(DetailedBalance, registered="fldb"):
    forward_looking = True
