"""Trajectory balance (Malkin et al. 2022, "Trajectory balance: improved credit assignment in GFlowNets").

For each trajectory τ = (s_0 → … → s_n = x → ⊤):

    L(τ) = (log Z(β) + Σ_t log P_F(s_{t+1}|s_t) − log R(x) − Σ_t log P_B(s_t|s_{t+1}))²

log Z is the policy's ``log_z`` head (conditioned on β), trained with its own, larger learning rate.
"""

from __future__ import annotations

from torch import Tensor

from molgfn.objectives.base import Objective, evaluate, mean, per_trajectory_sum
from molgfn.sampling.sampler import Trajectories


class TrajectoryBalance(Objective, registered="tb"):
    def residuals(self, trajs: Trajectories) -> Tensor:
        ev = evaluate(self.policy, trajs, self.learned_backward)
        sum_pf = per_trajectory_sum(ev.log_pf, ev.traj, trajs.n)
        sum_pb = per_trajectory_sum(ev.log_pb, ev.traj, trajs.n)
        self._log_z = ev.log_z
        return ev.log_z + sum_pf - ev.log_reward - sum_pb

    def loss(self, trajs: Trajectories) -> tuple[Tensor, dict[str, float]]:
        delta = self.residuals(trajs)
        return (delta**2).mean(), {
            "log_z": mean(self._log_z.detach()),
            "tb_residual_abs": mean(delta.detach().abs()),
        }
