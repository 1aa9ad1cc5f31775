"""Generating candidate molecules from a trained GFlowNet.

A generator is loaded from a run (its id or folder: the latest checkpoint), from a checkpoint file, or
from a shipped generator folder (``config.toml`` + ``policy.pt``, e.g. ``models/generator_default``).
:meth:`Generator.generate` samples at a chosen inverse temperature β, optionally keeps sampling until N
unique molecules pass the filters (with a cap), scores the result once with the run's reward and returns
the export table of :func:`molgfn.candidates.export.molecule_table`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molgfn.chem.tree import Tree
from molgfn.config import Config, config_from_dict, read_toml
from molgfn.errors import MolgfnError
from molgfn.resources import DEFAULT_GENERATOR, GENERATORS
from molgfn.resources import resolve as resolve_resource
from molgfn.sampling.model import SamplingModel
from molgfn.sampling.pool import ScorePool, generate_chunk
from molgfn.sampling.scoring import ConfigReward, Scored

# molecules per piece when the generated molecules are scored for their table (:meth:`Generator.score`)
SCORE_PIECE = 64


@dataclass
class GenerationReport:
    requested: int
    produced: int
    sampled: int  # trajectories drawn
    duplicates: int
    filtered: dict[str, int] = field(default_factory=dict)  # molecules removed by each filter
    capped: bool = False  # stopped at the sampling cap before reaching ``requested``


def _config_of(folder: Path) -> Config:
    path = folder / "config.toml"
    if not path.exists():
        raise MolgfnError(f"{folder}: no config.toml here (not a run folder nor a generator folder)")
    return config_from_dict(read_toml(path), source=str(path), base_dir=folder, check_files=True)


def _read_state(path: Path) -> dict:
    """A verified checkpoint or generator file (:func:`molgfn.training.checkpoints.read_checkpoint`)."""
    from molgfn.training.checkpoints import read_checkpoint

    if not path.exists():
        raise MolgfnError(f"{path}: file not found")
    return read_checkpoint(path)


def resolve(path_or_run: str | Path, runs_dir: str | Path = "runs") -> tuple[Config, dict, str]:
    """(config, policy state dict, description) of a run id/folder, checkpoint file or generator folder;
    ``default`` is the shipped generator."""
    path = resolve_resource(path_or_run, GENERATORS)
    if not path.exists() and (Path(runs_dir) / str(path_or_run)).exists():
        path = Path(runs_dir) / str(path_or_run)
    if not path.exists():
        raise MolgfnError(f"{path_or_run}: no such run, checkpoint or generator (runs folder: {runs_dir})")
    if path.is_file():
        state = _read_state(path)
        policy = state.get("algorithm", {}).get("policy") if "algorithm" in state else state.get("policy")
        if policy is None:
            raise MolgfnError(f"{path}: holds no policy weights")
        folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return _config_of(folder), policy, f"{path} (step {state.get('step', '?')})"
    if (path / "policy.pt").exists():
        return _config_of(path), _read_state(path / "policy.pt")["policy"], str(path)
    import sys

    from molgfn.training.checkpoints import latest_checkpoint
    from molgfn.training.runs import RunStore

    store = RunStore.open(path)
    if not store.checkpoints():
        raise MolgfnError(f"{path}: no checkpoint yet (is the run still starting?)")
    found = latest_checkpoint(store.checkpoints())
    if found.state is None:
        raise MolgfnError(f"{path}: no intact checkpoint ({'; '.join(found.skipped)})")
    for skipped in found.skipped:
        print(f"molgfn: warning: checkpoint {skipped}; using {found.path.name}", file=sys.stderr)
    state = found.state
    return _config_of(path), state["algorithm"]["policy"], f"{path} (step {state['step']})"


class Generator:
    """A trained policy with its environment and reward, ready to sample candidates."""

    def __init__(self, cfg: Config, policy_state: dict, source: str = "", device: str | None = None):
        if device is not None and device != cfg.run.device:
            if device not in ("cpu", "cuda"):
                raise MolgfnError(f"--device: must be cpu or cuda (got {device!r})")
            cfg = replace(cfg, run=replace(cfg.run, device=device))
        if cfg.run.device == "cuda" and not torch.cuda.is_available():
            raise MolgfnError("--device: 'cuda' requested but torch finds no CUDA device (use 'cpu')")
        torch.set_num_threads(cfg.run.threads)
        self.cfg = cfg
        self.source = source
        self.scorer = ConfigReward(cfg)
        self.reward = self.scorer.reward
        # the policy and what sampling needs: no objective, critics or optimisers
        self.model = SamplingModel(cfg, self.scorer, self.scorer.min_score)
        self.model.policy.load_state_dict(policy_state)
        self.model.policy.eval()
        self.remote = None  # a RemoteScorer on Ray (:meth:`use_ray`)
        # each worker rolls out, assembles (and, when asked, scores) its share of every batch; on a GPU the
        # whole batch rolls out here (a forked process cannot use the parent's CUDA context)
        workers = cfg.run.workers if cfg.run.device == "cpu" else 0
        self.pool = (
            ScorePool(self.model.vocab, self.scorer, workers, policy=self.model.policy)
            if workers > 0
            else None
        )

    def use_ray(self, address: str = "", actors: int = 0) -> None:
        """Score on Ray actors (this machine or a cluster); the rollout stays in this process."""
        from molgfn.reward.remote import RemoteScorer

        self.close()
        self.pool = None
        self.remote = RemoteScorer(self.cfg.build_reward, address, actors)

    def close(self) -> None:
        """Stop the worker processes or Ray actors, if any (they also stop when this process exits)."""
        if self.pool is not None:
            self.pool.close()
        if self.remote is not None:
            self.remote.close()
            self.remote = None

    def stream(
        self,
        beta: float,
        batch_size: int = 256,
        rng: np.random.Generator | None = None,
        score: bool = False,
    ) -> Iterator[tuple[list[Tree], Scored]]:
        """Endless batches of terminal trees with their molecules (SMILES; with ``score`` also the reward
        score, components and log W).

        A batch is split into one chunk per process (this one and each worker), each with its own seed
        drawn from ``rng``: every process rolls out, assembles and scores its chunk, and the workers start
        on the next batch before this one is handed over. A seed therefore reproduces the batches for a
        given ``run.workers``, and a chunk is the same whichever process computes it."""
        rng = rng if rng is not None else np.random.default_rng(self.cfg.run.seed)
        sampler, vocab = self.model.sampler, self.model.vocab
        local = self.scorer if score else None
        parts = 1 + (self.pool.workers if self.pool is not None else 0)
        sizes = [len(c) for c in np.array_split(np.arange(batch_size), parts) if len(c)]

        def plan() -> tuple[list[int], list]:
            seeds = [int(x) for x in rng.integers(0, 2**63 - 1, size=len(sizes))]
            futures = [self.pool.generate(beta, n, seed, score) for n, seed in zip(sizes[1:], seeds[1:])]
            return seeds, futures

        seeds, futures = plan()
        try:
            while True:
                chunks = [generate_chunk(sampler, vocab, local, beta, sizes[0], seeds[0])]
                chunks += [future.result() for future in futures]
                seeds, futures = plan()  # the workers go on while the caller uses this batch
                yield [t for trees, _ in chunks for t in trees], Scored.join(m for _, m in chunks)
        finally:  # the caller has enough: drop the chunks not started
            for future in futures:
                future.cancel()

    def score(self, smiles: Sequence[str], progress: Callable[[float], None] | None = None):
        """The reward of ``smiles`` with every raw value (the export's columns), as one
        :class:`~molgfn.reward.reward.RewardResult`: on the Ray actors, or in pieces shared between this
        process and the worker processes (this one takes the pieces no worker has started, from the end).
        ``progress(fraction)`` is called as pieces finish."""
        from molgfn.reward.reward import RewardResult

        smiles = list(smiles)
        if self.remote is not None:
            pool, start = self.remote.pool, self.remote.pool.done
            hook = pool.on_progress
            if progress is not None:
                pool.on_progress = lambda done, _: progress((done - start) / max(1, len(smiles)))
            try:
                return self.remote.score(smiles)
            finally:
                pool.on_progress = hook
        pieces = [smiles[i : i + SCORE_PIECE] for i in range(0, len(smiles), SCORE_PIECE)] or [[]]
        futures = [self.pool.score(p) for p in pieces[1:]] if self.pool is not None else []
        parts: list = [None] * len(pieces)
        done = 0

        def finished(k: int, result) -> None:
            nonlocal done
            parts[k] = result
            done += len(pieces[k])
            if progress is not None:
                progress(done / max(1, len(smiles)))

        finished(0, self.reward.score(pieces[0]))
        for k in range(len(pieces) - 1, 0, -1):
            if self.pool is None or futures[k - 1].cancel():
                finished(k, self.reward.score(pieces[k]))
        for k in range(1, len(pieces)):
            if parts[k] is None:
                finished(k, futures[k - 1].result())
        return RewardResult.join(parts)

    @property
    def proxy(self):
        """The proxy model of the reward's first proxy component, if any."""
        for term in getattr(self.reward, "terms", []):
            model = getattr(getattr(term, "component", None), "model", None)
            if model is not None and hasattr(model, "train_smiles"):
                return model
        return None

    @property
    def reference(self):
        """The proxy's training molecules (novelty, nearest neighbour), fingerprinted once; None without a proxy."""
        if not hasattr(self, "_reference"):
            from molgfn.candidates.reference import ReferenceSet

            proxy = self.proxy
            self._reference = ReferenceSet.of(list(proxy.train_smiles)) if proxy is not None else None
        return self._reference

    @property
    def beta_range(self) -> tuple[float, float]:
        return self.cfg.train.beta_min, self.cfg.train.beta_max

    def generate(
        self,
        n: int,
        beta: float | None = None,
        unique: bool = False,
        filters: str | Sequence[str] | None = None,
        progress: Callable[[float], None] | None = None,
        batch_size: int = 256,
        max_samples: int | None = None,
        seed: int | None = None,
        scoring: Callable[[float], None] | None = None,
    ) -> tuple[pd.DataFrame, GenerationReport]:
        """``n`` molecules at inverse temperature ``beta`` (default: the top of the training range).

        With ``unique`` (or filters) sampling continues until ``n`` unique molecules pass, up to
        ``max_samples`` trajectories (default max(20·n, 10,000)); the report says when the cap was hit.
        ``progress(fraction)`` follows the molecules kept, then ``scoring(fraction)`` the scoring of the
        result for its table (:meth:`score`).
        """
        from molgfn.candidates.export import molecule_table
        from molgfn.candidates.filters import COLUMN_PROPERTIES, apply_filters, parse_filters
        from molgfn.reward.reward import RewardResult

        if n < 1:
            raise MolgfnError(f"--n: must be at least 1 (got {n})")
        beta = float(self.cfg.train.beta_max if beta is None else beta)
        if not math.isfinite(beta) or beta <= 0:
            raise MolgfnError(f"--beta: must be a positive number (got {beta})")
        rules = parse_filters(filters) if filters else []
        needs_columns = any(
            f.kind == "in_domain" or (f.kind == "property" and f.prop in COLUMN_PROPERTIES) for f in rules
        )
        reference = self.reference
        cap = max_samples or max(20 * n, 10_000)
        rng = np.random.default_rng(self.cfg.run.seed if seed is None else seed)
        kept_smiles: list[str] = []
        kept_fragments: list[str] = []
        kept_scores: list = []  # their reward, when the filters needed it (not scored again)
        seen: set[str] = set()
        report = GenerationReport(requested=n, produced=0, sampled=0, duplicates=0)
        vocab = self.model.vocab
        # without de-duplication or filters, n molecules need exactly n trajectories
        size = min(batch_size, cap) if unique or rules else min(batch_size, n)
        batches = self.stream(beta, size, rng)
        while len(kept_smiles) < n and report.sampled < cap:
            trees, mols = next(batches)
            size = min(len(trees), cap - report.sampled)
            report.sampled += size
            candidates, fragments = [], []
            for smi, tree in zip(mols.smiles[:size], trees[:size]):
                if (unique or rules) and smi in seen:
                    report.duplicates += 1
                    continue
                seen.add(smi)
                candidates.append(smi)
                fragments.append(" + ".join(vocab[f].smiles for f in tree.frags))
            scored = None  # the candidates' reward, when a filter needs it: kept for the table
            if rules and candidates:
                columns = None
                if needs_columns:  # reward, proxy or reference columns: the candidates' table first
                    scored = self.score(candidates)
                    columns = molecule_table(
                        candidates,
                        reward_result=scored,
                        proxy=self.proxy,
                        reference_smiles=reference,
                        reward=self.reward,
                    )
                mask, removed = apply_filters(candidates, rules, reference_smiles=reference, columns=columns)
                for name, count in removed.items():
                    report.filtered[name] = report.filtered.get(name, 0) + int(count)
                candidates = [c for c, m in zip(candidates, mask) if m]
                fragments = [f for f, m in zip(fragments, mask) if m]
                if scored is not None:
                    scored = scored.take(np.nonzero(mask)[0])
            room = n - len(kept_smiles)
            kept_smiles += candidates[:room]
            kept_fragments += fragments[:room]
            if scored is not None:
                kept_scores.append(scored.take(np.arange(min(room, len(candidates)))))
            if progress is not None:
                progress(min(1.0, len(kept_smiles) / n))
        batches.close()
        report.produced = len(kept_smiles)
        report.capped = report.produced < n
        if not kept_smiles:
            table = pd.DataFrame({"smiles": []})
            return table, report
        result = RewardResult.join(kept_scores) if needs_columns else self.score(kept_smiles, scoring)
        table = molecule_table(
            kept_smiles,
            reward_result=result,
            proxy=self.proxy,
            reference_smiles=reference,
            extra={"fragments": kept_fragments},
            reward=self.reward,
        )
        return table, report


def load_generator(
    path_or_run: str | Path = DEFAULT_GENERATOR, runs_dir: str | Path = "runs", device: str | None = None
) -> Generator:
    """A :class:`Generator` from a run id or folder, a checkpoint file, or a generator folder, on ``device``
    (default: the run's ``run.device``)."""
    cfg, policy, source = resolve(path_or_run, runs_dir)
    return Generator(cfg, policy, source, device=device)
