"""Batched fragment environment on compact integer arrays (no RDKit in the stepping loop).

A :class:`TreeBatch` holds B fragment trees of at most N = ``max_frags`` nodes:

- ``frag``  (B, N): fragment id of each node, -1 past the last node;
- ``link``  (B, N, S): for each stem of each node, the node it is joined to, -1 if open, -2 if the
  fragment has no such stem (S is the largest stem count in the vocabulary);
- ``link_stem`` (B, N, S): the stem of that other node;
- ``n_nodes`` (B,), ``done`` (B,): whether the trajectory has stopped.

Actions for a whole batch are arrays of :class:`BatchActions`: ``kind`` (STOP, FIRST, ADD or NOOP for rows
already done) with ``node``, ``stem``, ``frag`` and ``frag_stem``. An ADD's target stem is often given as an
index into :attr:`Vocabulary.stem_table` (all (fragment, stem) pairs). RDKit is only called to assemble
finished molecules (:meth:`FragmentEnv.smiles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molgfn.chem.tree import Tree, canonical_key, log_symmetry_weight, tree_smiles
from molgfn.chem.vocab import Vocabulary

NOOP, STOP, FIRST, ADD = -1, 0, 1, 2


@dataclass
class TreeBatch:
    frag: np.ndarray
    link: np.ndarray
    link_stem: np.ndarray
    n_nodes: np.ndarray
    done: np.ndarray

    def __len__(self) -> int:
        return len(self.n_nodes)

    def take(self, rows: np.ndarray) -> TreeBatch:
        return TreeBatch(*(a[rows] for a in (self.frag, self.link, self.link_stem, self.n_nodes, self.done)))

    def copy(self) -> TreeBatch:
        return TreeBatch(*(a.copy() for a in (self.frag, self.link, self.link_stem, self.n_nodes, self.done)))

    def tree(self, i: int) -> Tree:
        """Row ``i`` as a :class:`Tree` (edges listed from the lower to the higher node index)."""
        n = int(self.n_nodes[i])
        frags = tuple(int(f) for f in self.frag[i, :n])
        edges = []
        for v in range(1, n):
            for sv in np.nonzero(self.link[i, v] >= 0)[0]:
                u = int(self.link[i, v, sv])
                if u < v:
                    edges.append((u, int(self.link_stem[i, v, sv]), v, int(sv)))
        edges.sort(key=lambda e: e[2])
        return Tree(frags, tuple(edges))

    def trees(self) -> list[Tree]:
        return [self.tree(i) for i in range(len(self))]


@dataclass
class BatchActions:
    kind: np.ndarray
    node: np.ndarray
    stem: np.ndarray
    frag: np.ndarray
    frag_stem: np.ndarray

    def take(self, rows: np.ndarray) -> BatchActions:
        return BatchActions(*(a[rows] for a in (self.kind, self.node, self.stem, self.frag, self.frag_stem)))


class FragmentEnv:
    """The fragment-tree MDP for one vocabulary and size bound, over batches of states."""

    def __init__(self, vocab: Vocabulary, max_frags: int = 9):
        if max_frags < 1:
            raise ValueError("max_frags must be at least 1")
        self.vocab = vocab
        self.max_frags = max_frags
        self.n_frags = len(vocab)
        self.max_stems = vocab.max_stems
        self.stem_table = vocab.stem_table
        self.n_targets = len(self.stem_table)
        # initial link row of a new node of each fragment: -1 for its stems, -2 beyond
        self._new_link = np.where(np.arange(self.max_stems)[None, :] < vocab.n_stems[:, None], -1, -2).astype(
            np.int32
        )

    # -- states ------------------------------------------------------------------------------------------
    def empty(self, batch_size: int) -> TreeBatch:
        n, s = self.max_frags, self.max_stems
        return TreeBatch(
            frag=np.full((batch_size, n), -1, dtype=np.int32),
            link=np.full((batch_size, n, s), -2, dtype=np.int32),
            link_stem=np.full((batch_size, n, s), -1, dtype=np.int32),
            n_nodes=np.zeros(batch_size, dtype=np.int32),
            done=np.zeros(batch_size, dtype=bool),
        )

    def from_trees(self, trees: list[Tree]) -> TreeBatch:
        batch = self.empty(len(trees))
        for i, t in enumerate(trees):
            for v, f in enumerate(t.frags):
                batch.frag[i, v] = f
                batch.link[i, v] = self._new_link[f]
            for u, su, v, sv in t.edges:
                batch.link[i, u, su], batch.link_stem[i, u, su] = v, sv
                batch.link[i, v, sv], batch.link_stem[i, v, sv] = u, su
            batch.n_nodes[i] = t.n_nodes
        return batch

    # -- masks -------------------------------------------------------------------------------------------
    def open_stems(self, batch: TreeBatch) -> np.ndarray:
        """(B, N, S) bool: open stems on which an ADD is legal (none once the size bound is reached)."""
        can_grow = (batch.n_nodes < self.max_frags) & ~batch.done
        return (batch.link == -1) & can_grow[:, None, None]

    def can_stop(self, batch: TreeBatch) -> np.ndarray:
        return (batch.n_nodes > 0) & ~batch.done

    def needs_first(self, batch: TreeBatch) -> np.ndarray:
        return (batch.n_nodes == 0) & ~batch.done

    def leaves(self, batch: TreeBatch) -> np.ndarray:
        """(B, N) bool: nodes a backward action may remove (degree-1 nodes, or the only node)."""
        degree = (batch.link >= 0).sum(axis=2)
        exists = batch.frag >= 0
        single = (batch.n_nodes == 1)[:, None]
        return exists & ((degree == 1) | (single & (degree == 0)))

    # -- transitions -------------------------------------------------------------------------------------
    def step(self, batch: TreeBatch, actions: BatchActions) -> TreeBatch:
        """Apply one forward action per row (in place) and return the batch.

        Every row is checked before any is applied, so an illegal action (ValueError) leaves the batch as it was.
        """
        kind = actions.kind
        stop = kind == STOP
        if np.any(stop & ~self.can_stop(batch)):
            raise ValueError("STOP on an empty or finished state")

        first = np.nonzero(kind == FIRST)[0]
        if len(first):
            if np.any(batch.n_nodes[first] != 0) or np.any(batch.done[first]):
                raise ValueError("FIRST on a non-empty state")
            if np.any((actions.frag[first] < 0) | (actions.frag[first] >= self.n_frags)):
                raise ValueError("FIRST with a fragment id outside the vocabulary")

        add = np.nonzero(kind == ADD)[0]
        if len(add):
            u, su = actions.node[add], actions.stem[add]
            f, sf = actions.frag[add], actions.frag_stem[add]
            n = batch.n_nodes[add]
            if np.any(batch.done[add]):
                raise ValueError("ADD on a finished state")
            if np.any(n >= self.max_frags):
                raise ValueError("ADD beyond the size bound")
            if np.any((f < 0) | (f >= self.n_frags)):
                raise ValueError("ADD of a fragment id outside the vocabulary")
            # range checks first: negative indices would otherwise wrap around silently
            if np.any((u < 0) | (u >= n) | (su < 0) | (su >= self.max_stems)) or np.any(
                batch.link[add, u, su] != -1
            ):
                raise ValueError("ADD on a used stem or one that does not exist")
            if np.any((sf < 0) | (sf >= self.vocab.n_stems[f])):
                raise ValueError("ADD by a stem the fragment does not have")

        batch.done[stop] = True
        if len(first):
            f = actions.frag[first]
            batch.frag[first, 0] = f
            batch.link[first, 0] = self._new_link[f]
            batch.n_nodes[first] = 1
        if len(add):
            v = batch.n_nodes[add]
            batch.frag[add, v] = f
            batch.link[add, v] = self._new_link[f]
            batch.link[add, u, su], batch.link_stem[add, u, su] = v, sf
            batch.link[add, v, sf], batch.link_stem[add, v, sf] = u, su
            batch.n_nodes[add] += 1
        return batch

    def random_actions(self, batch: TreeBatch, rng: np.random.Generator) -> BatchActions:
        """Actions drawn uniformly over each row's legal actions (NOOP for finished rows)."""
        b = len(batch)
        kind = np.full(b, NOOP, dtype=np.int32)
        node = np.zeros(b, dtype=np.int32)
        stem = np.zeros(b, dtype=np.int32)
        frag = np.zeros(b, dtype=np.int32)
        frag_stem = np.zeros(b, dtype=np.int32)

        first = self.needs_first(batch)
        kind[first] = FIRST
        frag[first] = rng.integers(0, self.n_frags, size=int(first.sum()))

        grow = self.open_stems(batch).reshape(b, -1)
        n_open = grow.sum(axis=1)
        live = self.can_stop(batch)
        choice = np.floor(rng.random(b) * (1 + n_open * self.n_targets)).astype(np.int64)
        kind[live & (choice == 0)] = STOP
        add = live & (choice > 0)
        kind[add] = ADD
        rows = np.nonzero(add)[0]
        if len(rows):
            c = choice[rows] - 1
            k, t = c // self.n_targets, c % self.n_targets
            position = np.argmax(np.cumsum(grow[rows], axis=1) > k[:, None], axis=1)
            node[rows], stem[rows] = np.divmod(position, self.max_stems)
            frag[rows], frag_stem[rows] = self.stem_table[t, 0], self.stem_table[t, 1]
        return BatchActions(kind, node, stem, frag, frag_stem)

    def random_rollout(self, batch_size: int, rng: np.random.Generator) -> tuple[TreeBatch, int]:
        """Roll out a batch with the uniform policy; returns the final batch and the transitions taken."""
        batch = self.empty(batch_size)
        transitions = 0
        while not batch.done.all():
            actions = self.random_actions(batch, rng)
            transitions += int((actions.kind != NOOP).sum())
            self.step(batch, actions)
        return batch, transitions

    # -- molecules and symmetry ---------------------------------------------------------------------------
    def smiles(self, batch: TreeBatch) -> list[str]:
        """Canonical SMILES of each row's assembled molecule ('' for an empty tree)."""
        return [tree_smiles(t, self.vocab) for t in batch.trees()]

    def log_symmetry_weight(self, batch: TreeBatch) -> np.ndarray:
        """log W(x) for each row: add it to log R(x) when training with per-action policies."""
        return np.array([log_symmetry_weight(t, self.vocab) for t in batch.trees()], dtype=np.float64)

    def keys(self, batch: TreeBatch) -> list[tuple]:
        return [canonical_key(t, self.vocab) for t in batch.trees()]
