"""RL-GFN: GFlowNet training by policy gradients (Niu, Huang, Hu, Zhang and Xu, ICML 2024,
"GFlowNet Training by Policy Gradients").

Per-step costs along a forward trajectory τ = (s_0 → … → s_n = x → ⊤):

    c_t = log P_F(s_{t+1}|s_t) − log P_B(s_t|s_{t+1})      (t < n)
    c_n = log P_F(⊤|x) − (log R(x) − log Z)

so Σ_t c_t is the trajectory-balance residual and E_{P_F}[Σ_t c_t] = KL(P_F(τ) ‖ P_B(τ|x)R(x)/Z) + const.
Its gradient is the policy gradient E[Σ_t ∇log P_F(a_t|s_t) · Q_t] with the cost-to-go Q_t (the pathwise
term E[∇log P_F(τ)] vanishes). A critic V(s) fits the cost-to-go; advantages come from GAE (γ = 1, λ),
mean-centred; the actor minimises Σ_t A_t·log P_F(a_t|s_t). log Z moves with the mean residual (it
minimises E[δ²] in log Z alone). Strictly on-policy.

Options:
- ``trpo``: a natural-gradient step instead of Adam for the forward policy: conjugate gradient on the
  Fisher–vector product of the exact KL(π_old ‖ π_θ) over legal actions, step scaled to the KL bound
  ``trpo_max_kl``, backtracking line search on the surrogate Σ_t ρ_t A_t.
- ``coupled_backward``: a learned P_B trained, after each forward update, by the same actor–critic on
  backward rollouts from the batch's terminal objects, with cost log P_B(s_t|s_{t+1}) − log P_G(s_{t+1}|s_t)
  and guide P_G = the current P_F (stop-gradient). Without it P_B is uniform, or, if the model has a
  learned backward head, fitted by maximum likelihood of the forward trajectories.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from molgfn.objectives.base import Objective, evaluate, mean, per_trajectory_sum
from molgfn.objectives.pg import explained_variance, gae, make_critic
from molgfn.sampling.sampler import Sampler, Trajectories

_NON_ACTOR = ("log_z_head", "backward_head", "flow_head")


class RLGFN(Objective, registered="rlgfn"):
    def __init__(
        self,
        policy,
        learned_backward: bool = False,
        grad_clip: float = 10.0,
        gae_lambda: float = 0.99,
        critic_lr: float = 1e-3,
        trpo: bool = False,
        trpo_max_kl: float = 0.01,
        coupled_backward: bool = False,
        sampler: Sampler | None = None,
    ):
        super().__init__(policy, learned_backward or coupled_backward, grad_clip)
        self.lam = gae_lambda
        self.trpo = trpo
        self.max_kl = trpo_max_kl
        self.coupled = coupled_backward
        self.sampler = sampler
        if coupled_backward and sampler is None:
            raise ValueError("the coupled backward policy needs the sampler for backward rollouts")
        self.critic = make_critic(policy)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=critic_lr, foreach=True)
        if coupled_backward:
            self.back_critic = make_critic(policy)
            self.back_critic_opt = torch.optim.Adam(self.back_critic.parameters(), lr=critic_lr, foreach=True)

    # -- forward actor-critic ------------------------------------------------------------------------------
    def costs(self, trajs: Trajectories, ev) -> Tensor:
        """c_t per row (detached): log P_F − log P_B, and log P_F(⊤|x) − log R(x) + log Z at the stop."""
        log_z = ev.log_z.detach()[ev.traj]
        last = ev.log_pf - ev.log_reward[ev.traj] + log_z
        return torch.where(ev.is_last, last, ev.log_pf - ev.log_pb).detach()

    def advantages(
        self,
        trajs: Trajectories,
        cost: Tensor,
        critic,
        beta_rows: Tensor,
        states,
        value: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """GAE advantages, returns and V(s_t); ``value`` passes in V already computed (it is detached)."""
        device = cost.device
        if value is None:
            with torch.no_grad():
                value = critic.state_value(states, beta_rows)
        value = value.detach()
        nxt = torch.as_tensor(trajs.next_index(), device=device)
        is_last = torch.as_tensor(trajs.is_last, device=device)
        v_next = torch.where(is_last, torch.zeros_like(value), value[nxt])
        delta = cost + v_next - value
        traj = torch.as_tensor(trajs.traj, device=device)
        pos = torch.as_tensor(trajs.position, device=device)
        adv = gae(delta, traj, pos, trajs.lengths, self.lam)
        return adv, adv + value, value

    def fit_critic(
        self,
        critic,
        opt,
        states,
        beta_rows: Tensor,
        target: Tensor,
        mask: Tensor | None = None,
        value: Tensor | None = None,
    ) -> tuple[float, float]:
        """One regression step of the critic on ``target``; ``value`` reuses a forward pass made with grad
        (the critic has not changed since)."""
        value = critic.state_value(states, beta_rows) if value is None else value
        if mask is not None:
            value, target = value[mask], target[mask]
        loss = ((value - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(critic.parameters(), self.grad_clip)
        opt.step()
        return float(loss.detach()), explained_variance(value.detach(), target)

    def update(self, trajs: Trajectories, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        device = next(self.policy.parameters()).device
        beta_rows = torch.as_tensor(trajs.beta[trajs.traj], dtype=torch.float32, device=device)
        ev = evaluate(self.policy, trajs, self.learned_backward)
        cost = self.costs(trajs, ev)
        # one critic pass serves both the advantages and the critic's own regression step below
        critic_value = self.critic.state_value(trajs.states, beta_rows)
        adv, returns, _ = self.advantages(trajs, cost, self.critic, beta_rows, trajs.states, critic_value)
        adv = adv - adv.mean()
        residual = per_trajectory_sum(cost, ev.traj, trajs.n)  # TB residual δ(τ) per trajectory
        info: dict[str, float] = {
            "log_z": mean(ev.log_z.detach()),
            "tb_residual_abs": mean(residual.abs()),
            "expected_cost": mean(residual),
        }
        # log Z: minimise E[δ²] in log Z alone (δ with the policy terms held fixed)
        log_z_loss = ((ev.log_z + (residual - ev.log_z.detach())) ** 2).mean()
        actor_loss = (adv * ev.log_pf).sum() / trajs.n
        pb_loss = torch.zeros((), device=device)
        if self.learned_backward and not self.coupled:
            pb_loss = -ev.log_pb.sum() / trajs.n  # maximum likelihood of the forward trajectories

        optimizer.zero_grad(set_to_none=True)
        if self.trpo:
            (log_z_loss + pb_loss).backward()
            for name, p in self.policy.named_parameters():
                if not name.startswith(_NON_ACTOR):
                    p.grad = None  # the trust-region step owns the actor parameters
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.grad_clip)
            optimizer.step()
            info.update(self.trpo_step(trajs, adv, ev))
        else:
            (actor_loss + log_z_loss + pb_loss).backward()
            info["grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.grad_clip)
            )
            optimizer.step()
        info["loss"] = float(actor_loss.detach())
        info["critic_loss"], info["explained_variance"] = self.fit_critic(
            self.critic, self.critic_opt, trajs.states, beta_rows, returns.detach(), value=critic_value
        )
        if self.coupled:
            info.update(self.backward_update(trajs, optimizer))
        return info

    # -- TRPO -----------------------------------------------------------------------------------------------
    def _actor_params(self) -> list[Tensor]:
        return [p for n, p in self.policy.named_parameters() if not n.startswith(_NON_ACTOR)]

    def trpo_step(self, trajs: Trajectories, adv: Tensor, ev) -> dict[str, float]:
        params = self._actor_params()
        device = adv.device
        beta_rows = torch.as_tensor(trajs.beta[trajs.traj], dtype=torch.float32, device=device)
        old_logp = ev.log_pf.detach()
        with torch.no_grad():
            old_all, _ = self.policy(trajs.states, beta_rows).all_log_probs()

        def surrogate_and_kl(with_grad: bool):
            with torch.set_grad_enabled(with_grad):
                out = self.policy(trajs.states, beta_rows)
                logp = out.log_prob(trajs.actions, trajs.target)
                surrogate = (torch.exp(logp - old_logp) * adv).sum() / trajs.n
                new_all, index = out.all_log_probs()
                kl_rows = torch.zeros(out.inputs.n_states, device=device).index_add(
                    0, index, torch.exp(old_all) * (old_all - new_all)
                )
                return surrogate, kl_rows.mean()

        surrogate, kl = surrogate_and_kl(True)
        grads = torch.autograd.grad(surrogate, params, retain_graph=True, allow_unused=True)
        g = torch.cat(
            [(gr if gr is not None else torch.zeros_like(p)).reshape(-1) for gr, p in zip(grads, params)]
        )
        kl_grads = torch.autograd.grad(kl, params, create_graph=True, allow_unused=True)
        flat_kl_grad = torch.cat(
            [(gr if gr is not None else torch.zeros_like(p)).reshape(-1) for gr, p in zip(kl_grads, params)]
        )

        def fisher_vector(v: Tensor) -> Tensor:
            hv = torch.autograd.grad(flat_kl_grad @ v, params, retain_graph=True, allow_unused=True)
            flat = torch.cat(
                [(h if h is not None else torch.zeros_like(p)).reshape(-1) for h, p in zip(hv, params)]
            )
            return flat + 0.1 * v

        step_dir = conjugate_gradient(fisher_vector, g, iterations=10)
        shs = float(step_dir @ fisher_vector(step_dir))
        if not np.isfinite(shs) or shs <= 0:
            return {"trpo_step": 0.0, "trpo_kl": 0.0}
        full_step = np.sqrt(2 * self.max_kl / shs) * step_dir
        old = torch.nn.utils.parameters_to_vector(params).detach()
        base = float(surrogate.detach())
        for fraction in 0.5 ** np.arange(10):
            torch.nn.utils.vector_to_parameters(old - fraction * full_step, params)  # minimising cost
            new_surrogate, new_kl = surrogate_and_kl(False)
            if float(new_kl) <= 1.5 * self.max_kl and float(new_surrogate) < base:
                return {"trpo_step": float(fraction), "trpo_kl": float(new_kl)}
        torch.nn.utils.vector_to_parameters(old, params)
        return {"trpo_step": 0.0, "trpo_kl": 0.0}

    # -- coupled backward policy ----------------------------------------------------------------------------
    def backward_update(self, trajs: Trajectories, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """Actor–critic on backward rollouts from the batch's terminal objects, guide P_G = P_F."""
        back = self.sampler.sample_backward(trajs.trees, trajs.beta)
        device = next(self.policy.parameters()).device
        beta_rows = torch.as_tensor(back.beta[back.traj], dtype=torch.float32, device=device)
        ev = evaluate(self.policy, back, learned_backward=True)
        move = ~ev.is_last
        cost = torch.where(move, ev.log_pb - ev.log_pf, torch.zeros_like(ev.log_pb)).detach()
        # the backward action at row t is taken from s_{t+1} (row t+1) and leads to s_t (row t)
        value_grad = self.back_critic.state_value(back.states, beta_rows)  # reused by fit_critic below
        value_all = value_grad.detach()
        value = value_all[ev.next_index]
        first = torch.as_tensor(back.position == 0, device=device)
        v_next = torch.where(first, torch.zeros_like(value_all), value_all)  # s_0 ends the rollout
        delta = torch.where(move, cost + v_next - value, torch.zeros_like(cost))
        traj = ev.traj
        pos = torch.as_tensor(back.position, device=device)
        adv = gae(delta, traj, pos, back.lengths, self.lam, reverse=True)
        adv = torch.where(move, adv - adv[move].mean(), torch.zeros_like(adv))
        returns = (adv + value).detach()
        actor_loss = (adv * ev.log_pb).sum() / back.n
        optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        for name, p in self.policy.named_parameters():
            if not name.startswith("backward_head"):
                p.grad = None  # the forward policy is the guide here: it is not updated
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.grad_clip)
        optimizer.step()
        # critic targets sit on the states the backward actions start from
        target = torch.zeros_like(value_all).index_put((ev.next_index[move],), returns[move])
        mask = torch.zeros_like(move).index_put((ev.next_index[move],), torch.ones_like(move[move]))
        critic_loss, ev_b = self.fit_critic(
            self.back_critic, self.back_critic_opt, back.states, beta_rows, target, mask, value=value_grad
        )
        return {
            "backward_loss": float(actor_loss.detach()),
            "backward_critic_loss": critic_loss,
            "backward_explained_variance": ev_b,
            "backward_cost": mean(cost[move].sum() / back.n),
        }

    def state_dict(self) -> dict:
        state = {"critic": self.critic.state_dict(), "critic_opt": self.critic_opt.state_dict()}
        if self.coupled:
            state.update(
                back_critic=self.back_critic.state_dict(), back_critic_opt=self.back_critic_opt.state_dict()
            )
        return state

    def load_state_dict(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        if self.coupled:
            self.back_critic.load_state_dict(state["back_critic"])
            self.back_critic_opt.load_state_dict(state["back_critic_opt"])


def conjugate_gradient(matvec, b: Tensor, iterations: int = 10, tol: float = 1e-10) -> Tensor:
    """Solve A x = b for symmetric positive-definite A given only x ↦ A x."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iterations):
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x
