"""A GFlowNet assembled from a run config: environment, policy, reward, sampler, objective, optimiser.

:func:`build_algorithm` returns a :class:`GFlowNet`, which the trainer drives one ``train_step`` at a
time and checkpoints through ``state_dict``/``load_state_dict``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch

from molgfn.chem.metrics import DiscoveryTracker
from molgfn.errors import MolgfnError
from molgfn.nn.policy import FragmentPolicy
from molgfn.objectives.registry import objective_spec
from molgfn.reward.properties import RUN_PROPERTIES
from molgfn.sampling.model import SamplingModel
from molgfn.sampling.pool import RayScorePool, ScorePool
from molgfn.sampling.sampler import Sampler, concat_trajectories
from molgfn.sampling.scoring import ConfigReward, ScoreFn
from molgfn.training.protocol import StepOutput


def hashed_score(smiles: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A fixed pseudo-random score in [0.05, 1] per molecule (from SHA-256 of its SMILES), for exact checks."""
    values = np.array([int(hashlib.sha256(s.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for s in smiles])
    score = 0.05 + 0.95 * values
    return score, {"hashed": score}


def _oracle_metrics(smiles: list[str], components: dict[str, np.ndarray]) -> dict[str, float]:
    """Per expensive oracle of a batch: molecules it was paid for now (once per distinct molecule), the
    rest (found in the cache, or repeats of a molecule paid for in this batch), and those that failed."""
    out = {}
    for key in components:
        if not key.endswith("_cached") or f"{key[:-7]}_raw" not in components:
            continue
        name, cached, raw = key[:-7], components[key], components[f"{key[:-7]}_raw"]
        calls = len({s for s, c in zip(smiles, cached) if c == 0})
        out[f"{name}_calls"] = float(calls)
        out[f"{name}_cached"] = float(len(cached) - calls)
        out[f"{name}_failed"] = float(np.sum(np.isnan(raw)))
    return out


def _lr_lambda(schedule: str, steps: int, warmup: int):
    def f(step: int) -> float:
        scale = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        progress = min(1.0, step / max(1, steps))
        if schedule == "cosine":
            scale *= 0.5 * (1 + math.cos(math.pi * progress))
        elif schedule == "linear":
            scale *= 1 - progress
        return max(scale, 0.01 if schedule != "constant" else scale)

    return f


class GFlowNet:
    """Environment, policy, sampler and objective, trained one batch per :meth:`train_step`."""

    def __init__(self, cfg: Any, score_fn: ScoreFn | None = None, min_score: float = 1e-4):
        self.cfg = cfg
        torch.set_num_threads(getattr(cfg.run, "threads", 1))
        workers = 0
        backend = getattr(cfg.run, "backend", "local")
        if backend == "ray":  # fail fast (Ray missing, head unreachable) before the model is built
            from molgfn.distributed import connect

            connect(cfg.run.ray_address)
        if score_fn is None:  # the config's reward, which worker processes can rebuild
            score_fn = ConfigReward(cfg, properties=RUN_PROPERTIES)  # recorded in the run for browsing
            min_score = score_fn.min_score
            workers = getattr(cfg.run, "workers", 0)
        self.model = SamplingModel(cfg, score_fn, min_score)
        self.device, self.rng = self.model.device, self.model.rng
        self.vocab, self.env, self.policy = self.model.vocab, self.model.env, self.model.policy
        self.sampler = self.model.sampler
        if backend == "ray":  # ... on Ray actors, on this machine or a cluster
            self.sampler.pool = RayScorePool(self.vocab, score_fn, cfg.run.ray_actors, cfg.run.ray_address)
        elif workers > 0:  # finished molecules are assembled and scored in worker processes
            self.sampler.pool = ScorePool(self.vocab, score_fn, workers)
        self.objective = build_objective(cfg, self.policy, self.sampler)
        log_z_params = list(self.policy.log_z_head.parameters())
        ids = {id(p) for p in log_z_params}
        others = [p for p in self.policy.parameters() if id(p) not in ids]
        # foreach: one kernel per step for all tensors instead of a Python loop over ~100 of them (torch's
        # default on GPUs only; on this CPU it saves about 5 ms per optimiser step)
        self.optimizer = torch.optim.Adam(
            [{"params": others, "lr": cfg.train.lr}, {"params": log_z_params, "lr": cfg.train.lr_logz}],
            foreach=True,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(cfg.train.lr_schedule, cfg.train.steps, cfg.train.warmup_steps)
        )
        self.replay: list[tuple[float, str, Any]] = []  # (score, smiles, tree), best first
        self.trajectories_seen = 0
        self.tracker = DiscoveryTracker(threshold=cfg.train.mode_threshold)
        self._ahead = (
            None  # with train.sample_ahead: the batch rolled out for the next step (not checkpointed)
        )

    def close(self) -> None:
        """Stop the scoring workers, if any (they also stop when this process exits)."""
        self._ahead = None
        if self.sampler.pool is not None:
            self.sampler.pool.close()

    def scoring_nodes(self) -> dict[str, int] | None:
        """Molecules scored per Ray node so far (None on the local backend)."""
        pool = self.sampler.pool
        return dict(pool.actors.nodes) if isinstance(pool, RayScorePool) else None

    def scoring_retried(self) -> int:
        """Pieces of batches scored again on another Ray actor after theirs died."""
        pool = self.sampler.pool
        return pool.actors.retried if isinstance(pool, RayScorePool) else 0

    def set_scoring_progress(self, hook) -> None:
        """``hook(done, in_flight)`` as the Ray actors finish pieces of a batch (local backend: never)."""
        pool = self.sampler.pool
        if isinstance(pool, RayScorePool):
            pool.actors.on_progress = hook

    def draw_beta(self, n: int) -> np.ndarray:
        lo, hi = self.cfg.train.beta_min, self.cfg.train.beta_max
        return np.full(n, lo) if hi <= lo else self.rng.uniform(lo, hi, size=n)

    def train_step(self, step: int) -> StepOutput:
        """The ``step``-th update (steps count from 1, as the trainer's and the run store's do)."""
        cfg = self.cfg.train
        if cfg.sample_ahead:
            # this step trains on the batch rolled out during the previous one (with the parameters one
            # update older: fine for off-policy objectives), and the next batch rolls out now, before the
            # update, so the workers score it while this process trains
            pending = self._ahead if self._ahead is not None else self._start(self._n_sample())
            self._ahead = self._start(self._n_sample())
            trajs = pending.finish()
            n_replay = min(cfg.batch_size - pending.n, len(self.replay))
        else:
            n_sample = self._n_sample()
            n_replay = cfg.batch_size - n_sample
            trajs = self._start(n_sample).finish()
        fresh = trajs
        if n_replay:
            picks = self.rng.choice(len(self.replay), size=n_replay, replace=False)
            replayed = self.sampler.replay(
                [self.replay[i][2] for i in picks], self.draw_beta(n_replay), self.rng
            )
            if self.objective.needs_state_rewards:
                replayed.state_log_reward = self.sampler.state_log_rewards(replayed)
            trajs = concat_trajectories(trajs, replayed)
        self.policy.train()
        info = self.objective.update(trajs, self.optimizer)
        self.scheduler.step()
        self._update_replay(fresh)
        self.trajectories_seen += fresh.n
        self.tracker.update(fresh.smiles, fresh.score)
        metrics = {
            "modes": float(self.tracker.modes),
            "unique_total": float(self.tracker.unique),
            "top100_reward": self.tracker.top_k(100),
            **info,
            "reward_mean": float(np.mean(fresh.score)),
            "reward_max": float(np.max(fresh.score)),
            "log_reward_mean": float(np.mean(fresh.log_reward)),
            "length_mean": float(np.mean(fresh.lengths - 1)),
            "unique_fraction": len(set(fresh.smiles)) / fresh.n,
            "sample_time": fresh.sample_time,
            "lr": self.optimizer.param_groups[0]["lr"],
            **_oracle_metrics(fresh.smiles, fresh.components),
        }
        # on the steps whose summary the trainer logs (not at a last step between them: a run extended later
        # by --resume must store the same rows as one trained to the end at once)
        if step % cfg.metrics_every == 0:
            metrics["intdiv_top1000"] = self.tracker.diversity_of_top(1000)
        return StepOutput(metrics, fresh.n, fresh.smiles, fresh.score, fresh.components)

    def _n_sample(self) -> int:
        """Trajectories to roll out for a batch (the rest of it is replayed)."""
        cfg = self.cfg.train
        n_replay = int(round(cfg.batch_size * cfg.replay_fraction)) if cfg.replay_size and self.replay else 0
        return cfg.batch_size - min(n_replay, len(self.replay))

    def _start(self, n: int):
        return self.sampler.start(
            self.draw_beta(n),
            self.rng,
            epsilon=self.cfg.train.epsilon,
            state_rewards=self.objective.needs_state_rewards,
        )

    def _update_replay(self, trajs) -> None:
        size = self.cfg.train.replay_size
        if not size:
            return
        known = {s for _, s, _ in self.replay}
        for score, smi, tree in zip(trajs.score, trajs.smiles, trajs.trees):
            if smi not in known:
                self.replay.append((float(score), smi, tree))
                known.add(smi)
        self.replay.sort(key=lambda item: -item[0])
        del self.replay[size:]

    # -- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "objective": self.objective.state_dict(),
            "replay": [(s, smi, (tree.frags, tree.edges)) for s, smi, tree in self.replay],
            "rng": self.rng.bit_generator.state,
            "trajectories_seen": self.trajectories_seen,
            "tracker": self.tracker.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        from molgfn.chem.tree import Tree

        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.objective.load_state_dict(state["objective"])
        self.replay = [
            (s, smi, Tree(tuple(f), tuple(tuple(e) for e in edges))) for s, smi, (f, edges) in state["replay"]
        ]
        self.rng.bit_generator.state = state["rng"]
        self.trajectories_seen = state["trajectories_seen"]
        self.tracker.load_state_dict(state["tracker"])

    # -- model likelihood and exact check: the sampling model's --------------------------------------------
    def log_prob_estimate(self, trees: list, beta: float, n_samples: int = 16) -> np.ndarray:
        """See :meth:`molgfn.sampling.model.SamplingModel.log_prob_estimate`."""
        return self.model.log_prob_estimate(trees, beta, n_samples)

    def exact_policy(self, beta: float):
        """See :meth:`molgfn.sampling.model.SamplingModel.exact_policy`."""
        return self.model.exact_policy(beta)


def build_objective(cfg: Any, policy: FragmentPolicy, sampler: Sampler):
    """The objective named by ``cfg.objective.name``, with the options its registry entry names."""
    spec = objective_spec(cfg.objective.name)
    if spec.on_policy and (cfg.train.epsilon > 0 or cfg.train.replay_fraction > 0):
        raise MolgfnError(
            f"train.epsilon and train.replay_fraction must be 0 for the on-policy objective {spec.name!r}"
        )
    extra = {"sampler": sampler} if spec.needs_sampler else {}
    return spec.load()(
        policy,
        learned_backward=cfg.model.learned_backward,
        grad_clip=cfg.train.grad_clip,
        **spec.kwargs(cfg),
        **extra,
    )


def build_algorithm(cfg: Any, score_fn: ScoreFn | None = None) -> GFlowNet:
    """The trainer's entry point: a :class:`GFlowNet` for a validated run config."""
    return GFlowNet(cfg, score_fn=score_fn)
