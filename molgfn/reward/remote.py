"""Scoring a list of SMILES on Ray actors (``molgfn reward score --backend ray``, ``molgfn sample``).

Each actor builds the reward once (``build()``: proxy, plugins, receptor maps stay loaded) and scores
pieces of the list; the oracle cache is served from this machine (:class:`~molgfn.reward.cache.CacheServer`),
so whichever node scores a molecule, it is paid for once. Results come back in input order.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

from molgfn.reward.cache import OracleStats

PIECE = 8


def _stats_of(reward: Any) -> dict[str, OracleStats]:
    return {
        t.name: dataclasses.replace(t.component.stats)
        for t in reward.terms
        if getattr(t.component, "stats", None) is not None
    }


def _task(build: Callable[[], Any], cache_server: Any) -> Callable[[list[str]], tuple[Any, dict]]:
    from molgfn.distributed import own_token
    from molgfn.reward.cache import route_to

    route_to(cache_server, own_token())
    reward = build()

    def score(smiles: list[str]) -> tuple[Any, dict[str, OracleStats]]:
        before = _stats_of(reward)
        result = reward.score(smiles)
        delta = {}
        for name, after in _stats_of(reward).items():
            was = before[name]
            delta[name] = OracleStats(
                *(getattr(after, f.name) - getattr(was, f.name) for f in dataclasses.fields(OracleStats))
            )
        return result, delta

    return score


class RemoteScorer:
    """A pool of Ray actors, each holding ``build()``'s reward, scoring lists of SMILES."""

    def __init__(
        self,
        build: Callable[[], Any],
        address: str = "",
        actors: int = 0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        import ray

        from molgfn.distributed import ActorPool, connect
        from molgfn.reward.cache import start_cache_server

        connect(address)
        self.cache_server = start_cache_server()
        self.pool = ActorPool(
            functools.partial(_task, build, self.cache_server),
            actors,
            address,
            on_progress=on_progress,
            on_lost=lambda token: ray.get(self.cache_server.release_owner.remote(token), timeout=60),
        )
        self.stats: dict[str, OracleStats] = {}

    def score(self, smiles: Sequence[str]):
        """The :class:`~molgfn.reward.reward.RewardResult` of ``smiles``; adds to ``stats``."""
        from molgfn.reward.reward import RewardResult

        smiles = list(smiles)
        # at least 4 pieces per actor, so that slow molecules (a long docking) do not leave actors idle
        size = max(1, min(PIECE, len(smiles) // (4 * self.pool.size)))
        pieces = [smiles[i : i + size] for i in range(0, len(smiles), size)]
        parts = self.pool.map(pieces, weights=[len(p) for p in pieces])
        for _, delta in parts:
            for name, d in delta.items():
                total = self.stats.setdefault(name, OracleStats())
                for f in dataclasses.fields(OracleStats):
                    setattr(total, f.name, getattr(total, f.name) + getattr(d, f.name))
        return RewardResult.join([r for r, _ in parts])

    def close(self) -> None:
        self.pool.close()
