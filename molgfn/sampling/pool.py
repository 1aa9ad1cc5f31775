"""Worker processes that assemble and score finished molecules, or roll out whole seeded chunks.

Assembling a tree into a molecule and scoring it (proxy, QED, SA, ...) costs a few milliseconds per
molecule of RDKit work, as much as the rest of a training step. With ``run.workers`` ≥ 1 a
:class:`ScorePool` does it in worker processes while the sampler keeps rolling out the unfinished
trajectories, and the sampler's own process takes back whatever the workers have not started when the
rollout ends, so both cores stay busy.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np

from molgfn.chem.tree import Tree
from molgfn.chem.vocab import Vocabulary
from molgfn.processes import worker_setup
from molgfn.sampling.sampler import Sampler
from molgfn.sampling.scoring import Scored, ScoreFn, score_trees

# molecules per task sent to a worker: small enough that the sampler can take back unstarted ones
PIECE = 8


_WORKER: dict[str, Any] = {}


def generate_chunk(
    sampler: Any, vocab: Vocabulary, score_fn: ScoreFn | None, beta: float, n: int, seed: int
) -> tuple[list[Tree], Scored]:
    """``n`` terminal trees rolled out at ``beta`` by a :class:`~molgfn.sampling.sampler.Sampler`, with their molecules
    (scored when ``score_fn`` is given). Every draw comes from ``seed``, so a chunk is the same whichever
    process computes it (tested)."""
    import torch

    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    trees = sampler.sample_trees(np.full(n, beta), rng, generator)
    return trees, score_trees(trees, vocab, score_fn)


def _init_worker(
    vocab: Vocabulary, score_fn: ScoreFn | None, policy: Any = None, parent: int | None = None
) -> None:
    worker_setup(parent)  # Ctrl-C left to the trainer; dies with the sampler's process, even on kill -9
    import torch

    torch.set_num_threads(1)
    _WORKER.update(vocab=vocab, score_fn=score_fn, policy=policy)


def _worker_task(trees: list[Tree], score: bool) -> Scored:
    return score_trees(trees, _WORKER["vocab"], _WORKER["score_fn"] if score else None)


def _worker_score(smiles: list[str]) -> Any:
    return _WORKER["score_fn"].reward.score(smiles)


def _worker_generate(beta: float, n: int, seed: int, score: bool) -> tuple[list[Tree], Scored]:
    if "sampler" not in _WORKER:
        policy = _WORKER["policy"]
        policy.eval()
        _WORKER["sampler"] = Sampler(policy.env, policy, _WORKER["score_fn"])
    score_fn = _WORKER["score_fn"] if score else None
    return generate_chunk(_WORKER["sampler"], _WORKER["vocab"], score_fn, beta, n, seed)


class ScorePool:
    """Worker processes (one torch thread each) running :func:`score_trees` on pieces of a batch, or, for
    generation with a fixed ``policy``, whole seeded chunks (:meth:`generate`, :func:`generate_chunk`).

    ``submit`` queues trees as they finish; ``gather`` computes in this process every piece no worker
    has started yet and waits for the rest, so the caller never idles while work is queued. On Linux the
    workers are forked (they start at once, with the reward already loaded, and a script needs no
    ``if __name__ == "__main__"`` guard); elsewhere they are spawned.
    """

    def __init__(
        self, vocab: Vocabulary, score_fn: ScoreFn | None, workers: int = 1, policy: Any = None
    ) -> None:
        if workers < 1:
            raise ValueError("a ScorePool needs at least one worker")
        self.vocab, self.score_fn, self.workers = vocab, score_fn, workers
        # a fixed (trained) policy the workers can also roll out with (:meth:`generate`); they hold the
        # parameters it has when they start
        self.policy = policy
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context(
                    "fork" if sys.platform.startswith("linux") else "spawn"
                ),
                initializer=_init_worker,
                initargs=(self.vocab, self.score_fn, self.policy, os.getpid()),
            )
            atexit.register(self.close)
        return self._executor

    def submit(self, trees: list[Tree], score: bool) -> list[tuple[list[Tree], bool, Future]]:
        """Queue ``trees`` in pieces; returns the pending pieces for :meth:`gather`."""
        pool = self._pool()
        return [
            (trees[i : i + PIECE], score, pool.submit(_worker_task, trees[i : i + PIECE], score))
            for i in range(0, len(trees), PIECE)
        ]

    def generate(self, beta: float, n: int, seed: int, score: bool) -> Future:
        """:func:`generate_chunk` in a worker, with the pool's policy (given at construction)."""
        if self.policy is None:
            raise ValueError("this pool was built without a policy to generate with")
        return self._pool().submit(_worker_generate, beta, n, seed, score)

    def score(self, smiles: list[str]) -> Future:
        """The :class:`~molgfn.reward.reward.RewardResult` of ``smiles`` (every raw value, for the export),
        computed in a worker by the pool's score function's reward (a :class:`ConfigReward`)."""
        return self._pool().submit(_worker_score, smiles)

    def gather(self, pending: list[tuple[list[Tree], bool, Future]], local: ScoreFn | None) -> list[Scored]:
        """The results of ``pending`` pieces, in order; pieces still queued are computed here with ``local``."""
        out: list[Scored | None] = [None] * len(pending)
        for k in range(len(pending) - 1, -1, -1):  # take back from the end of the queue
            trees, score, future = pending[k]
            if future.cancel():
                out[k] = score_trees(trees, self.vocab, local if score else None)
        for k, (_, _, future) in enumerate(pending):
            if out[k] is None:
                out[k] = future.result()
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _ray_task(vocab: Vocabulary, score_fn: ScoreFn | None, cache_server: Any):
    """In a Ray actor: route the oracle cache to the driver's server, then score pieces of trees."""
    from molgfn.distributed import own_token
    from molgfn.reward.cache import route_to

    if cache_server is not None:
        route_to(cache_server, own_token())

    def task(piece: tuple[list[Tree], bool]) -> Scored:
        trees, score = piece
        return score_trees(trees, vocab, score_fn if score else None)

    return task


class RayScorePool:
    """:class:`ScorePool`'s interface on Ray actors (``run.backend = "ray"``), on one machine or a cluster.

    Every molecule is assembled and scored on an actor (none in the sampler's process), pieces go to
    whichever actor is free, and a piece whose actor died is scored again elsewhere; the oracle cache is
    served from this machine to every actor (:class:`molgfn.reward.cache.CacheServer`)."""

    def __init__(
        self, vocab: Vocabulary, score_fn: ScoreFn | None, actors: int = 0, address: str = ""
    ) -> None:
        import functools

        from molgfn.distributed import ActorPool, connect
        from molgfn.reward.cache import start_cache_server

        connect(address)
        self.vocab, self.score_fn = vocab, score_fn
        self.cache_server = start_cache_server()
        self.actors = ActorPool(
            functools.partial(_ray_task, vocab, score_fn, self.cache_server),
            actors,
            address,
            on_lost=self._release,
        )
        self.workers = self.actors.size
        self.policy = None

    def _release(self, token: str) -> None:
        """A dead actor's claims on the oracle cache go back before its pieces are scored elsewhere."""
        import ray

        ray.get(self.cache_server.release_owner.remote(token), timeout=60)

    def submit(self, trees: list[Tree], score: bool) -> list[tuple[list[Tree], bool, int]]:
        pieces = [trees[i : i + PIECE] for i in range(0, len(trees), PIECE)]
        tickets = self.actors.submit([(p, score) for p in pieces], weights=[len(p) for p in pieces])
        return [(p, score, t) for p, t in zip(pieces, tickets)]

    def gather(self, pending: list[tuple[list[Tree], bool, int]], local: ScoreFn | None) -> list[Scored]:
        return self.actors.results([t for _, _, t in pending])

    def close(self) -> None:
        self.actors.close()
