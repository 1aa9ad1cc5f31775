"""What sampling from a trained policy needs, and nothing more: vocabulary, environment, policy, sampler.

Training (:class:`molgfn.training.algorithm.GFlowNet`) adds an objective, its critics and the optimisers
around a :class:`SamplingModel`; generation (:class:`molgfn.candidates.generate.Generator`) loads the
policy's weights into one and never builds those.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from molgfn.chem.env import FragmentEnv
from molgfn.chem.tree import log_symmetry_weight
from molgfn.chem.vocab import load_vocabulary
from molgfn.nn.policy import FragmentPolicy
from molgfn.sampling.evaluate import evaluate, per_trajectory_sum
from molgfn.sampling.sampler import Sampler, backward_actions
from molgfn.sampling.scoring import ScoreFn


def build_policy(cfg: Any, env: FragmentEnv) -> FragmentPolicy:
    """The policy network a run config describes (untrained)."""
    return FragmentPolicy(
        env,
        hidden=cfg.model.hidden,
        layers=cfg.model.layers,
        layer=cfg.model.layer,
        beta_bins=cfg.model.beta_embedding,
        beta_scale=max(2.0 * cfg.train.beta_max, 1.0),
    )


class SamplingModel:
    """Environment, policy and sampler of a run config; ``rng`` draws the backward paths of the likelihood
    estimate (and, in training, everything else the algorithm draws)."""

    def __init__(self, cfg: Any, score_fn: ScoreFn | None, min_score: float = 1e-4, pool: Any = None) -> None:
        self.cfg = cfg
        self.device = torch.device(cfg.run.device)
        self.rng = np.random.default_rng(cfg.run.seed)
        torch.manual_seed(cfg.run.seed)
        self.vocab = load_vocabulary(cfg.env.vocab)
        self.env = FragmentEnv(self.vocab, cfg.env.max_frags)
        self.policy = build_policy(cfg, self.env).to(self.device)
        self.sampler = Sampler(
            self.env, self.policy, score_fn, min_score=min_score, device=self.device, pool=pool
        )

    @torch.no_grad()
    def log_prob_estimate(self, trees: list, beta: float, n_samples: int = 16) -> np.ndarray:
        """Importance-sampling estimate of log P_T(x), the log-probability that the model ends at each tree.

        P_T(x) = E_{τ∼P_B(·|x)}[P_F(τ)/P_B(τ|x)] with the uniform per-leaf P_B. Backward paths reach only one
        forward action per symmetry orbit, so the average estimates P_T(x)·W(x) (see molgfn.chem.tree);
        the symmetry weight is divided out.
        """
        self.policy.eval()
        sequences = [backward_actions(t, self.rng) for t in trees for _ in range(n_samples)]
        trajs = self.sampler.from_sequences(sequences, np.full(len(sequences), float(beta)), score=False)
        ev = evaluate(self.policy, trajs, learned_backward=False)
        log_ratio = per_trajectory_sum(ev.log_pf - ev.log_pb, ev.traj, trajs.n).cpu().numpy()
        log_ratio = log_ratio.reshape(len(trees), n_samples)
        estimate = np.logaddexp.reduce(log_ratio, axis=1) - np.log(n_samples)
        return estimate - np.array([log_symmetry_weight(t, self.vocab) for t in trees])

    @torch.no_grad()
    def exact_policy(self, beta: float):
        """The policy as a function for :func:`molgfn.chem.enumerate.exact_terminal_distribution`."""
        self.policy.eval()

        def policy(trees):
            batch = self.env.from_trees(list(trees))
            b = torch.full((len(trees),), float(beta), device=self.device)
            return self.policy(batch, b).flat_probs()

        return policy
