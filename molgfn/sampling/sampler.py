"""Batched trajectory sampling and the trajectory batch every objective consumes.

:meth:`Sampler.sample` rolls out B trajectories in lock-step, one network call per step for the whole
batch, with ε-uniform exploration and a β per trajectory. The result, a :class:`Trajectories`, lists every
visited state once, flattened: for trajectory i the states s_0 (empty), s_1, …, s_{n_i−1} = x_i, with the
action taken at each (the last is STOP). Objectives re-run the policy on ``states`` in one batched pass.

Rewards: ``log_reward`` is β·log(max(score, min)) + log W(x), where W is the symmetry weight of
:mod:`molgfn.chem.tree` that makes per-action forward and per-leaf backward policies exact.
``log_pb_uniform`` holds −log(#leaves of s_{t+1}) for each non-stop transition (0 at STOP).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from molgfn.chem.env import ADD, FIRST, NOOP, STOP, BatchActions, FragmentEnv, TreeBatch
from molgfn.chem.tree import Add, First, Tree
from molgfn.nn.policy import FragmentPolicy
from molgfn.sampling.scoring import Scored, ScoreFn, score_trees

if TYPE_CHECKING:
    from molgfn.sampling.pool import ScorePool

ACTION_FIELDS = ("kind", "node", "stem", "frag", "frag_stem")


def _scatter(actions: BatchActions, rows: np.ndarray, size: int) -> BatchActions:
    """Actions of ``rows`` placed in a batch of ``size`` (NOOP elsewhere)."""
    full = BatchActions(*(np.full(size, NOOP if n == "kind" else 0, dtype=np.int32) for n in ACTION_FIELDS))
    for name in ACTION_FIELDS:
        getattr(full, name)[rows] = getattr(actions, name)
    return full


def concat_batches(batches: list[TreeBatch]) -> TreeBatch:
    return TreeBatch(
        *(
            np.concatenate([getattr(b, name) for b in batches])
            for name in ("frag", "link", "link_stem", "n_nodes", "done")
        )
    )


def concat_actions(actions: list[BatchActions]) -> BatchActions:
    return BatchActions(*(np.concatenate([getattr(a, name) for a in actions]) for name in ACTION_FIELDS))


@dataclass
class Trajectories:
    states: TreeBatch  # every visited state, flattened (see the module docstring)
    actions: BatchActions  # the action taken at each state
    target: np.ndarray  # ADD target index into the vocabulary stem table, -1 otherwise
    traj: np.ndarray  # trajectory of each state
    position: np.ndarray  # t of each state within its trajectory
    lengths: np.ndarray  # (B,) number of states (= actions) per trajectory
    beta: np.ndarray  # (B,)
    trees: list[Tree]  # (B,) terminal trees
    smiles: list[str]
    score: np.ndarray  # (B,) reward score in [0, 1]
    components: dict[str, np.ndarray]
    log_reward: np.ndarray  # (B,) β·log score + log W
    log_w: np.ndarray  # (B,)
    log_pf_sample: np.ndarray  # log-probability of each action under the sampling policy (incl. exploration)
    state_log_reward: np.ndarray | None = None  # log R(s_t) per state (FL-DB), 0 for the empty state
    sample_time: float = 0.0
    extras: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.lengths)

    @property
    def is_last(self) -> np.ndarray:
        return self.position == self.lengths[self.traj] - 1

    @property
    def log_pb_uniform(self) -> np.ndarray:
        """−log #leaves(s_{t+1}) for each non-stop transition; 0 at STOP."""
        n_next = self.states.n_nodes + 1
        leaves_next = np.where(n_next <= 1, 1, self._leaves_after())
        return np.where(self.actions.kind == STOP, 0.0, -np.log(np.maximum(leaves_next, 1)))

    def _leaves_after(self) -> np.ndarray:
        # the next state is the following row of the same trajectory (the last row's action is STOP)
        nxt = np.minimum(np.arange(len(self.traj)) + 1, len(self.traj) - 1)
        degree = (self.states.link[nxt] >= 0).sum(axis=2)
        exists = self.states.frag[nxt] >= 0
        single = self.states.n_nodes[nxt] == 1
        return np.where(single, 1, ((degree == 1) & exists).sum(axis=1))

    def next_index(self) -> np.ndarray:
        """Row of s_{t+1} for each non-last row (itself for the last row)."""
        idx = np.arange(len(self.traj))
        return np.where(self.is_last, idx, idx + 1)


class Sampler:
    """Rolls out trajectories with a :class:`FragmentPolicy` and scores the terminal molecules."""

    def __init__(
        self,
        env: FragmentEnv,
        policy: FragmentPolicy,
        score_fn: ScoreFn,
        min_score: float = 1e-4,
        device: torch.device | str = "cpu",
        pool: ScorePool | None = None,
    ):
        self.env = env
        self.policy = policy
        self.score_fn = score_fn
        self.min_score = min_score
        self.device = torch.device(device)
        self.pool = pool  # assembles and scores finished trajectories in worker processes during the rollout

    def log_reward(self, score: np.ndarray, beta: np.ndarray) -> np.ndarray:
        return beta * np.log(np.maximum(score, self.min_score))

    def sample(
        self,
        beta: np.ndarray,
        rng: np.random.Generator,
        epsilon: float = 0.0,
        state_rewards: bool = False,
        generator: torch.Generator | None = None,
        score: bool = True,
    ) -> Trajectories:
        """Roll out ``len(beta)`` trajectories; ``score=False`` skips the reward (generation scores once,
        after de-duplication and filtering), leaving zeros."""
        return self.start(beta, rng, epsilon, state_rewards, generator, score).finish()

    @torch.inference_mode()
    def start(
        self,
        beta: np.ndarray,
        rng: np.random.Generator,
        epsilon: float = 0.0,
        state_rewards: bool = False,
        generator: torch.Generator | None = None,
        score: bool = True,
    ) -> PendingSample:
        """The rollout of :meth:`sample`, with the finished molecules queued in the pool (if any);
        :meth:`PendingSample.finish` collects them. In between the caller can train on an earlier batch
        while the workers score this one."""
        begin = time.perf_counter()
        b = len(beta)
        rows: list[tuple] = []  # (states, actions, ADD targets, trajectory ids, position, log-probabilities)
        trees: list[Tree | None] = [None] * b
        finished: list[np.ndarray] = []  # rows handed to the pool, in order
        pending: list = []
        batch = self.env.empty(b)
        for row in self._rollout(batch, beta, rng, epsilon, generator):
            rows.append(row)
            if self.pool is not None:  # molecules finished now are assembled and scored during the rollout
                active, actions = row[3], row[1]
                stopped = active[actions.kind == STOP]
                for i in stopped:
                    trees[i] = batch.tree(int(i))
                finished.append(stopped)
                pending += self.pool.submit([trees[i] for i in stopped], score)
        return PendingSample(
            self,
            rows,
            batch,
            np.asarray(beta),
            score,
            state_rewards,
            trees,
            finished,
            pending,
            time.perf_counter() - begin,
        )

    @torch.inference_mode()
    def sample_trees(
        self, beta: np.ndarray, rng: np.random.Generator, generator: torch.Generator | None = None
    ) -> list[Tree]:
        """Only the terminal trees of ``len(beta)`` trajectories (no assembly, no reward): for generation,
        which assembles them in the pool while the next batch rolls out. Same draws as :meth:`sample`."""
        batch = self.env.empty(len(beta))
        for _ in self._rollout(batch, beta, rng, 0.0, generator, log_probs=False):
            pass
        return batch.trees()

    def _rollout(
        self,
        batch: TreeBatch,
        beta: np.ndarray,
        rng: np.random.Generator,
        epsilon: float,
        generator: torch.Generator | None,
        log_probs: bool = True,
    ):
        """Step ``batch`` until every trajectory has stopped; yields one row per step (states before the
        step, actions, ADD targets, trajectory ids, position, sampling log-probabilities, or zeros
        without ``log_probs``)."""
        env, b = self.env, len(batch)
        beta_t = torch.as_tensor(beta, dtype=torch.float32, device=self.device)
        t = 0
        was_training = self.policy.training
        self.policy.eval()
        try:
            while not batch.done.all():
                active = np.nonzero(~batch.done)[0]
                sub = batch.take(active)
                # a state with nowhere left to grow can only stop (log-probability 0): no network call for it
                forced = (sub.n_nodes > 0) & ~env.open_stems(sub).reshape(len(active), -1).any(axis=1)
                free = np.nonzero(~forced)[0]
                if len(free) == len(active):
                    actions, target, logp = self._draw(
                        sub, beta_t[active], rng, epsilon, generator, log_probs
                    )
                else:
                    drawn = (
                        self._draw(sub.take(free), beta_t[active[free]], rng, epsilon, generator, log_probs)
                        if len(free)
                        else None
                    )
                    actions, target, logp = _with_forced_stops(drawn, free, len(active))
                env.step(batch, _scatter(actions, active, b))
                yield sub, actions, target, active, t, logp
                t += 1
        finally:
            self.policy.train(was_training)

    def _draw(
        self,
        sub: TreeBatch,
        beta: torch.Tensor,
        rng: np.random.Generator,
        epsilon: float,
        generator: torch.Generator | None,
        log_probs: bool = True,
    ) -> tuple[BatchActions, np.ndarray, np.ndarray]:
        """One action per state from π (ε-mixed with uniform), its ADD target and its sampling
        log-probability (zeros without ``log_probs``)."""
        env = self.env
        out = self.policy(sub, beta, sampling=True)
        actions, target = self.policy.sample_actions(out, generator)
        if epsilon > 0:
            explore = rng.random(len(sub)) < epsilon
            if explore.any():
                rand = env.random_actions(sub, rng)
                for name in ACTION_FIELDS:
                    getattr(actions, name)[explore] = getattr(rand, name)[explore]
                rand_target = env.vocab.stem_offset[rand.frag] + rand.frag_stem
                target[explore] = np.where(rand.kind[explore] == ADD, rand_target[explore], -1)
        if not log_probs:
            return actions, target, np.zeros(len(sub))
        logp = out.log_prob(actions, target).cpu().numpy()
        if epsilon > 0:
            logp = self._mix_uniform(sub, logp, epsilon)
        return actions, target, logp

    def state_log_rewards(self, trajs: Trajectories) -> np.ndarray:
        """log R(s) + log W(s) of every visited state (0 for the empty state), for forward-looking objectives."""
        trees = trajs.states.trees()
        nonempty = [i for i, tr in enumerate(trees) if tr.n_nodes]
        scored = self._score([trees[i] for i in nonempty], True)
        out = np.zeros(len(trees))
        beta = trajs.beta[trajs.traj[nonempty]]
        out[nonempty] = self.log_reward(scored.score, beta) + scored.log_w
        return out

    def _score(self, trees: list[Tree], score: bool) -> Scored:
        """:func:`score_trees` of ``trees``, shared with the pool's workers when there is one."""
        if self.pool is None:
            return score_trees(trees, self.env.vocab, self.score_fn if score else None)
        return Scored.join(self.pool.gather(self.pool.submit(trees, score), self.score_fn))

    def _mix_uniform(self, sub: TreeBatch, logp: np.ndarray, epsilon: float) -> np.ndarray:
        """log of (1−ε)·π(a|s) + ε/#legal actions: the actual sampling probability."""
        n_open = self.env.open_stems(sub).reshape(len(sub), -1).sum(axis=1)
        n_legal = np.where(sub.n_nodes == 0, self.env.n_frags, 1 + n_open * self.env.n_targets)
        return np.logaddexp(np.log1p(-epsilon) + logp, np.log(epsilon) - np.log(n_legal))

    def replay(self, trees: list[Tree], beta: np.ndarray, rng: np.random.Generator) -> Trajectories:
        """Trajectories ending at given terminal trees, drawn backward with the uniform P_B (for replay)."""
        return self.from_sequences([backward_actions(tr, rng) for tr in trees], beta)

    @torch.no_grad()
    def sample_backward(
        self, trees: list[Tree], beta: np.ndarray, generator: torch.Generator | None = None
    ) -> Trajectories:
        """Trajectories ending at ``trees``, drawn backward with the learned P_B (one network call per step)."""
        ids = [list(range(t.n_nodes)) for t in trees]
        current = list(trees)
        removal: list[list[int]] = [[] for _ in trees]
        beta_t = torch.as_tensor(beta, dtype=torch.float32, device=self.device)
        was_training = self.policy.training
        self.policy.eval()
        while True:
            active = [i for i, t in enumerate(current) if t.n_nodes > 1]
            if not active:
                break
            out = self.policy(self.env.from_trees([current[i] for i in active]), beta_t[active])
            inp = out.inputs
            u = torch.rand(out.backward.shape, generator=generator, device=self.device).clamp(
                1e-12, 1 - 1e-12
            )
            score = (out.backward - torch.log(-torch.log(u))).cpu().numpy()
            graph, local = inp.leaf_graph.cpu().numpy(), inp.leaf_local.cpu().numpy()
            for j, i in enumerate(active):
                mine = np.nonzero(graph == j)[0]
                leaf = int(local[mine[np.argmax(score[mine])]])
                removal[i].append(ids[i].pop(leaf))
                current[i] = current[i].remove(leaf)
        self.policy.train(was_training)
        return self.from_sequences([actions_from_removal(t, r) for t, r in zip(trees, removal)], beta)

    def from_sequences(
        self, sequences: list[list[First | Add]], beta: np.ndarray, score: bool = True
    ) -> Trajectories:
        """Trajectories that follow given forward action sequences, each ending with STOP (``score=False``
        skips the reward, leaving zeros)."""
        env = self.env
        b = len(sequences)
        batch = env.empty(b)
        rows = []
        for t in range(max(len(s) for s in sequences) + 1):
            active = np.nonzero(~batch.done)[0]
            if not len(active):
                break
            acts = BatchActions(
                *(np.full(b, NOOP if n == "kind" else 0, dtype=np.int32) for n in ACTION_FIELDS)
            )
            target = np.full(b, -1, dtype=np.int64)
            for i in active:
                seq = sequences[i]
                if t == len(seq):
                    acts.kind[i] = STOP
                elif isinstance(seq[t], First):
                    acts.kind[i], acts.frag[i] = FIRST, seq[t].frag
                else:
                    a = seq[t]
                    acts.kind[i], acts.node[i], acts.stem[i], acts.frag[i], acts.frag_stem[i] = (
                        ADD,
                        a.node,
                        a.stem,
                        a.frag,
                        a.frag_stem,
                    )
                    target[i] = env.vocab.stem_offset[a.frag] + a.frag_stem
            rows.append((batch.take(active), acts.take(active), target[active], active, t, None))
            env.step(batch, acts)
        return self._finish(rows, batch, beta, score)

    def _finish(
        self,
        rows: list[tuple],
        batch: TreeBatch,
        beta: np.ndarray,
        score: bool,
        scored: tuple[list[Tree], Scored] | None = None,
    ) -> Trajectories:
        """A :class:`Trajectories` from per-step rows (states, actions, targets, trajectory ids, position,
        log-probabilities or None), ordered by trajectory then position, with the terminals scored (unless
        ``scored`` already holds the terminal trees and their molecules)."""
        b = len(batch)
        traj = np.concatenate([r[3] for r in rows])
        position = np.concatenate([np.full(len(r[3]), r[4]) for r in rows])
        order = np.lexsort((position, traj))
        if scored is None:
            trees = batch.trees()
            mols = self._score(trees, score)
        else:
            trees, mols = scored
        smiles, scores, components, log_w = mols.smiles, mols.score, mols.components, mols.log_w
        log_pf = [r[5] if r[5] is not None else np.full(len(r[3]), np.nan) for r in rows]
        return Trajectories(
            states=concat_batches([r[0] for r in rows]).take(order),
            actions=concat_actions([r[1] for r in rows]).take(order),
            target=np.concatenate([r[2] for r in rows])[order],
            traj=traj[order],
            position=position[order],
            lengths=np.bincount(traj, minlength=b),
            beta=np.asarray(beta, dtype=np.float64),
            trees=trees,
            smiles=smiles,
            score=scores,
            components=components,
            log_reward=self.log_reward(scores, beta) + log_w,
            log_w=log_w,
            log_pf_sample=np.concatenate(log_pf)[order],
        )


@dataclass
class PendingSample:
    """A rolled-out batch whose molecules may still be in the scoring pool (:meth:`Sampler.start`)."""

    sampler: Sampler
    rows: list[tuple]
    batch: TreeBatch
    beta: np.ndarray
    score: bool
    state_rewards: bool
    trees: list[Tree | None]
    finished: list[np.ndarray]
    pending: list
    rollout_time: float

    @property
    def n(self) -> int:
        return len(self.beta)

    @torch.inference_mode()
    def finish(self) -> Trajectories:
        """The :class:`Trajectories`, once every molecule is scored (pieces no worker has started are
        computed here). ``sample_time`` counts the rollout and this call, not the time in between."""
        begin = time.perf_counter()
        sampler = self.sampler
        scored = None
        if sampler.pool is not None:
            joined = Scored.join(sampler.pool.gather(self.pending, sampler.score_fn))
            scored = (self.trees, _reorder(joined, np.concatenate(self.finished)))
        result = sampler._finish(self.rows, self.batch, self.beta, self.score, scored)
        if self.state_rewards:
            result.state_log_reward = sampler.state_log_rewards(result)
        result.sample_time = self.rollout_time + time.perf_counter() - begin
        return result


def _reorder(scored: Scored, rows: np.ndarray) -> Scored:
    """Results listed in the order ``rows`` finished, put back in trajectory order."""
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[rows] = np.arange(len(rows))
    return Scored(
        [scored.smiles[k] for k in inverse],
        scored.score[inverse],
        {name: values[inverse] for name, values in scored.components.items()},
        scored.log_w[inverse],
    )


def _with_forced_stops(
    drawn: tuple[BatchActions, np.ndarray, np.ndarray] | None, free: np.ndarray, n: int
) -> tuple[BatchActions, np.ndarray, np.ndarray]:
    """Spread the (actions, targets, log-probabilities) drawn for rows ``free`` (None: no row) over ``n``
    rows; every other row stops, with log-probability 0."""
    full = BatchActions(*(np.zeros(n, dtype=np.int32) for _ in ACTION_FIELDS))
    full.kind[:] = STOP
    full_target = np.full(n, -1, dtype=np.int64)
    full_logp = np.zeros(n)
    if drawn is not None:
        actions, target, logp = drawn
        for name in ACTION_FIELDS:
            getattr(full, name)[free] = getattr(actions, name)
        full_target[free] = target
        full_logp[free] = logp
    return full, full_target, full_logp


def backward_actions(tree: Tree, rng: np.random.Generator) -> list[First | Add]:
    """A forward action sequence building ``tree``, drawn by removing uniformly random leaves (uniform P_B).

    Leaves are removed one at a time; replayed forward, nodes are added in the reverse order, so each
    node's index in the rebuilt tree is its position in that order.
    """
    links = tree.links()
    remaining = set(range(tree.n_nodes))
    removal: list[int] = []
    while len(remaining) > 1:
        leaves = sorted(v for v in remaining if sum(w in remaining for w, _ in links[v].values()) == 1)
        leaf = int(rng.choice(leaves))
        removal.append(leaf)
        remaining.remove(leaf)
    return actions_from_removal(tree, removal)


def actions_from_removal(tree: Tree, removal: list[int]) -> list[First | Add]:
    """The forward actions that rebuild ``tree`` when its nodes are removed in ``removal`` order (leaves
    first, all but one node); node indices refer to the order of addition."""
    links = tree.links()
    last = set(range(tree.n_nodes)) - set(removal)
    order = list(last) + removal[::-1]
    index = {v: i for i, v in enumerate(order)}
    seq: list[First | Add] = [First(tree.frags[order[0]])]
    for v in order[1:]:
        stem, (w, w_stem) = next((s, (w, ws)) for s, (w, ws) in links[v].items() if index[w] < index[v])
        seq.append(Add(index[w], w_stem, tree.frags[v], stem))
    return seq


def concat_trajectories(a: Trajectories, b: Trajectories) -> Trajectories:
    """Join two trajectory batches (for example sampled and replayed)."""
    shift = a.n
    comps = {k: np.concatenate([a.components[k], b.components[k]]) for k in a.components}
    joined = Trajectories(
        states=concat_batches([a.states, b.states]),
        actions=concat_actions([a.actions, b.actions]),
        target=np.concatenate([a.target, b.target]),
        traj=np.concatenate([a.traj, b.traj + shift]),
        position=np.concatenate([a.position, b.position]),
        lengths=np.concatenate([a.lengths, b.lengths]),
        beta=np.concatenate([a.beta, b.beta]),
        trees=a.trees + b.trees,
        smiles=a.smiles + b.smiles,
        score=np.concatenate([a.score, b.score]),
        components=comps,
        log_reward=np.concatenate([a.log_reward, b.log_reward]),
        log_w=np.concatenate([a.log_w, b.log_w]),
        log_pf_sample=np.concatenate([a.log_pf_sample, b.log_pf_sample]),
        sample_time=a.sample_time + b.sample_time,
    )
    if a.state_log_reward is not None and b.state_log_reward is not None:
        joined.state_log_reward = np.concatenate([a.state_log_reward, b.state_log_reward])
    return joined
