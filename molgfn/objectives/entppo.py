"""Ent-PPO: entropy-regularised proximal policy optimisation for GFlowNets (Zykova-Myzina et al. 2026,
policy gradient algorithms and proximal policy optimisation applied to GFlowNets).

GFlowNet training as soft RL with entropy coefficient 1 and γ = 1: each transition earns
r_t = log P_B(s_t|s_{t+1}), the exit earns log R(x). With the soft one-step return
g_t = r_t − log π_old(a_t|s_t), a value network V (separate from the policy) gives

    δ_t = g_t + V(s_{t+1}) − V(s_t)        (V = 0 after the exit)

and GAE advantages A_t (λ ≈ 0.7), computed once per batch and frozen. With ``value_head = "shared"`` V is
the policy's own flow head on the policy's trunk instead: each minibatch then needs one forward and one
backward pass, for the loss below plus ``value_coef`` times the value loss (V − returns)². For K epochs of minibatches the
policy maximises

    Σ_t [ min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t) − KL(π_θ(·|s_t) ‖ π_old(·|s_t)) ],   ρ_t = π_θ(a_t|s_t)/π_old(a_t|s_t)

with the KL computed exactly over every legal action of s_t (π_old's full distribution is kept for each
visited state). At the soft-RL optimum V(s_0) = log Z, so V(s_0) is the log Z estimate and there is no
separate log Z. P_B is uniform, or learned by maximising the likelihood of the forward trajectories.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from molgfn.errors import MolgfnError
from molgfn.objectives.base import Objective, evaluate, mean
from molgfn.objectives.pg import explained_variance, gae, make_critic
from molgfn.sampling.sampler import Trajectories


def exact_kl(new_all: Tensor, old_all: Tensor, index: Tensor, n_states: int) -> Tensor:
    """KL(π_new(·|s) ‖ π_old(·|s)) per state, from aligned log-probabilities of every legal action."""
    terms = torch.exp(new_all) * (new_all - old_all)
    return torch.zeros(n_states, dtype=terms.dtype, device=terms.device).index_add(0, index, terms)


def ragged_rows(offsets: Tensor, counts: Tensor) -> Tensor:
    """Concatenated ranges [offset, offset + count) for each (offset, count), without a Python loop."""
    ends = torch.cumsum(counts, 0)
    within = torch.arange(int(ends[-1]), device=counts.device) - torch.repeat_interleave(
        ends - counts, counts
    )
    return torch.repeat_interleave(offsets, counts) + within


class EntPPO(Objective, registered="entppo"):
    def __init__(
        self,
        policy,
        learned_backward: bool = False,
        grad_clip: float = 10.0,
        gae_lambda: float = 0.7,
        critic_lr: float = 1e-3,
        epochs: int = 4,
        minibatches: int = 4,
        clip: float = 0.2,
        seed: int = 0,
        value_head: str = "separate",
        value_coef: float = 0.5,
    ):
        super().__init__(policy, learned_backward, grad_clip)
        self.lam, self.epochs, self.minibatches, self.clip = gae_lambda, epochs, minibatches, clip
        if value_head not in ("separate", "shared"):
            raise ValueError(f"value_head must be 'separate' or 'shared' (got {value_head!r})")
        self.shared = value_head == "shared"
        self.value_coef = value_coef
        # shared: the policy is its own critic (its flow head), trained by the policy's optimiser
        self.critic = policy if self.shared else make_critic(policy)
        self.critic_opt = (
            None if self.shared else torch.optim.Adam(self.critic.parameters(), lr=critic_lr, foreach=True)
        )
        self.rng = np.random.default_rng(seed)

    def soft_rewards(self, trajs: Trajectories, ev) -> Tensor:
        """r_t: log P_B(s_t|s_{t+1}) on transitions, log R(x) at the exit."""
        return torch.where(ev.is_last, ev.log_reward[ev.traj], ev.log_pb).detach()

    def update(self, trajs: Trajectories, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        device = next(self.policy.parameters()).device
        beta_rows = torch.as_tensor(trajs.beta[trajs.traj], dtype=torch.float32, device=device)
        with torch.no_grad():
            ev = evaluate(self.policy, trajs, self.learned_backward)
            old_logp = ev.log_pf
            old_all, old_index = ev.out.all_log_probs()
            counts = torch.bincount(old_index, minlength=len(old_logp))
            offsets = torch.cumsum(counts, 0) - counts
            value = ev.log_flow if self.shared else self.critic.state_value(trajs.states, beta_rows)
            reward = self.soft_rewards(trajs, ev)
            soft = reward - old_logp
            v_next = torch.where(ev.is_last, torch.zeros_like(value), value[ev.next_index])
            delta = soft + v_next - value
            pos = torch.as_tensor(trajs.position, device=device)
            adv = gae(delta, ev.traj, pos, trajs.lengths, self.lam)
            returns = adv + value
        stats = {"approx_kl": [], "clip_fraction": [], "kl": [], "policy_loss": [], "value_loss": []}
        rows = np.arange(len(old_logp))
        for _ in range(self.epochs):
            self.rng.shuffle(rows)
            for mb in np.array_split(rows, self.minibatches):
                if not len(mb):
                    continue
                mb_t = torch.as_tensor(mb, device=device)
                out = self.policy(trajs.states.take(mb), beta_rows[mb_t])
                logp = out.log_prob(trajs.actions.take(mb), trajs.target[mb])
                ratio = torch.exp(logp - old_logp[mb_t])
                a = adv[mb_t]
                surrogate = torch.min(ratio * a, ratio.clamp(1 - self.clip, 1 + self.clip) * a)
                new_all, new_index = out.all_log_probs()
                old_slices = ragged_rows(offsets[mb_t], counts[mb_t])
                kl = exact_kl(new_all, old_all[old_slices], new_index, len(mb))
                loss = -(surrogate - kl).mean()
                if self.shared:
                    v_loss = ((out.log_flow - returns[mb_t]) ** 2).mean()
                    loss = loss + self.value_coef * v_loss
                if self.learned_backward:
                    # P_B by maximum likelihood of the forward trajectories: log P_B of the transition into
                    # each sampled state s_{t+1} (its last node was just added)
                    keep = trajs.position[mb] > 0
                    pb = out.log_pb(trajs.states.n_nodes[mb] - 1)
                    loss = loss - pb[torch.as_tensor(keep, device=device)].mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.grad_clip)
                optimizer.step()
                if not self.shared:
                    v = self.critic.state_value(trajs.states.take(mb), beta_rows[mb_t])
                    v_loss = ((v - returns[mb_t]) ** 2).mean()
                    self.critic_opt.zero_grad(set_to_none=True)
                    v_loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.critic.parameters(), self.grad_clip)
                    self.critic_opt.step()
                with torch.no_grad():
                    log_ratio = logp - old_logp[mb_t]
                    stats["approx_kl"].append(float(((ratio - 1) - log_ratio).mean()))
                    stats["clip_fraction"].append(float(((ratio - 1).abs() > self.clip).float().mean()))
                    stats["kl"].append(float(kl.mean()))
                    stats["policy_loss"].append(float(loss))
                    stats["value_loss"].append(float(v_loss))
        first = np.flatnonzero(trajs.position == 0)
        with torch.no_grad():  # V(s_0) after the update: only the empty states, no second pass over the batch
            v_start = self.critic.state_value(trajs.states.take(first), beta_rows[torch.as_tensor(first)])
        info = {k: float(np.mean(v)) for k, v in stats.items()}
        info.update(
            loss=info["policy_loss"],
            critic_loss=info["value_loss"],
            log_z=mean(v_start),
            # of the values the advantages were built on (before this update), as Stable-Baselines3 reports it
            explained_variance=explained_variance(value, returns),
            soft_return=mean(soft.sum() / trajs.n),
        )
        return info

    def state_dict(self) -> dict:
        if self.shared:  # the value head is part of the policy, saved with it
            return {"rng": self.rng.bit_generator.state}
        return {
            "critic": self.critic.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        if self.shared == ("critic" in state):
            raise MolgfnError(
                "checkpoint: written with objective.ppo_value_head = "
                f"{'separate' if 'critic' in state else 'shared'!r}: resume it with that setting"
            )
        if not self.shared:
            self.critic.load_state_dict(state["critic"])
            self.critic_opt.load_state_dict(state["critic_opt"])
        self.rng.bit_generator.state = state["rng"]
