"""Sub-trajectory balance SubTB(λ) (Madan et al. 2023, "Learning GFlowNets from partial episodes").

With positions 0..n of a trajectory, v_i = log F(s_i) for i < n and v_n = log R(x) (the flow into the sink),
and increments δ_t = log P_F(a_t|s_t) − log P_B(s_t|s_{t+1}) (δ = log P_F(⊤|x) at the stop), every pair
i < j contributes the residual v_i + Σ_{t=i}^{j−1} δ_t − v_j with weight λ^{j−i}; the weights of a
trajectory are normalised to sum to one. Vectorised over a (B, L+1, L+1) grid.
"""

from __future__ import annotations

import torch
from torch import Tensor

from molgfn.objectives.base import Objective, evaluate, mean
from molgfn.sampling.sampler import Trajectories


class SubTrajectoryBalance(Objective, registered="subtb"):
    def __init__(self, policy, learned_backward: bool = False, grad_clip: float = 10.0, lam: float = 0.9):
        super().__init__(policy, learned_backward, grad_clip)
        self.lam = lam

    def loss(self, trajs: Trajectories) -> tuple[Tensor, dict[str, float]]:
        ev = evaluate(self.policy, trajs, self.learned_backward)
        device = ev.log_pf.device
        b, length = trajs.n, int(trajs.lengths.max())
        traj = ev.traj
        pos = torch.as_tensor(trajs.position, device=device)
        lengths = torch.as_tensor(trajs.lengths, device=device)
        values = torch.zeros(b, length + 1, device=device)
        values = values.index_put((traj, pos), ev.log_flow)
        values = values.index_put((torch.arange(b, device=device), lengths), ev.log_reward)
        delta = torch.zeros(b, length, device=device).index_put((traj, pos), ev.log_pf - ev.log_pb)
        cum = torch.cat([torch.zeros(b, 1, device=device), delta.cumsum(dim=1)], dim=1)  # (B, L+1)
        residual = values[:, :, None] + cum[:, None, :] - cum[:, :, None] - values[:, None, :]  # [b, i, j]
        idx = torch.arange(length + 1, device=device)
        gap = (idx[None, :] - idx[:, None]).float()
        valid = (gap > 0)[None] & (idx[None, None, :] <= lengths[:, None, None])
        weight = torch.where(valid, self.lam**gap, torch.zeros_like(gap))
        weight = weight / weight.sum(dim=(1, 2), keepdim=True)
        loss = (weight * residual**2).sum(dim=(1, 2)).mean()
        return loss, {
            "log_z": mean(values[:, 0].detach()),
            "subtb_full_residual_abs": mean(residual[torch.arange(b), 0, lengths].detach().abs()),
        }
