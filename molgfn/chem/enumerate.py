"""Exact enumeration of a small state space and the exact terminal distribution of any policy.

This is the arbiter of correctness (docs/architecture.md, "Correctness"). On a vocabulary of a few fragments and a small size
bound, every state (up to isomorphism) is enumerated. For a forward policy π(a|s) over the legal actions,
the probability of reaching each state follows by dynamic programming over the state DAG,
P(s') = Σ_s P(s) Σ_{a: s→s'} π(a|s), where the inner sum groups every action that leads to the same
(isomorphic) state. The probability of ending at x is P_T(x) = P(x)·π(Stop|x). The target is R(x)/Z and the
report is the total variation ½·Σ_x |P_T(x) − R(x)/Z|.

Usage::

    space = enumerate_states(load_vocabulary("tiny"), max_frags=3)
    p = exact_terminal_distribution(space, policy)   # policy(list[Tree]) -> list[np.ndarray]
    tv = total_variation(p, target_distribution(space, log_reward))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from molgfn.chem.tree import Action, Stop, Tree, canonical_key, forward_actions, tree_smiles
from molgfn.chem.vocab import Vocabulary

# A batched forward policy: probabilities over forward_actions(tree) for each tree, in that order.
Policy = Callable[[Sequence[Tree]], Sequence[np.ndarray]]


@dataclass
class StateSpace:
    """Every state reachable within ``max_frags`` fragments, keyed by canonical key, in size order."""

    vocab: Vocabulary
    max_frags: int
    keys: list[tuple] = field(default_factory=list)
    trees: dict[tuple, Tree] = field(default_factory=dict)
    actions: dict[tuple, list[Action]] = field(default_factory=dict)
    # for each state: the child key reached by each action (None for Stop), aligned with actions[key]
    targets: dict[tuple, list[tuple | None]] = field(default_factory=dict)

    @property
    def terminal_keys(self) -> list[tuple]:
        """Every non-empty state can stop, so every non-empty state is a terminal object."""
        return [k for k in self.keys if self.trees[k].n_nodes > 0]

    def smiles(self, key: tuple) -> str:
        return tree_smiles(self.trees[key], self.vocab)


def enumerate_states(vocab: Vocabulary, max_frags: int, limit: int = 200_000) -> StateSpace:
    """Breadth-first enumeration from the empty tree, one representative tree per isomorphism class."""
    space = StateSpace(vocab, max_frags)
    empty = Tree()
    frontier = [empty]
    space.trees[canonical_key(empty, vocab)] = empty
    while frontier:
        nxt: list[Tree] = []
        for tree in frontier:
            key = canonical_key(tree, vocab)
            space.keys.append(key)
            actions = forward_actions(tree, vocab, max_frags)
            targets: list[tuple | None] = []
            for a in actions:
                if isinstance(a, Stop):
                    targets.append(None)
                    continue
                child = tree.add(a)
                ck = canonical_key(child, vocab)
                targets.append(ck)
                if ck not in space.trees:
                    space.trees[ck] = child
                    nxt.append(child)
                    if len(space.trees) > limit:
                        raise ValueError(f"more than {limit} states: use a smaller vocabulary or size bound")
            space.actions[key] = actions
            space.targets[key] = targets
        frontier = nxt
    return space


def exact_terminal_distribution(space: StateSpace, policy: Policy) -> dict[tuple, float]:
    """P_T(x) for every terminal object x under ``policy``, by dynamic programming over the state DAG."""
    trees = [space.trees[k] for k in space.keys]
    probs = policy(trees)
    reach = {space.keys[0]: 1.0}
    terminal: dict[tuple, float] = {}
    for key, p_action in zip(space.keys, probs):  # keys are in size order, so parents come first
        p_state = reach.get(key, 0.0)
        p_action = np.asarray(p_action, dtype=np.float64)
        if len(p_action) != len(space.actions[key]):
            raise ValueError(
                f"policy returned {len(p_action)} probabilities for {len(space.actions[key])} actions"
            )
        for target, p in zip(space.targets[key], p_action):
            if target is None:
                terminal[key] = terminal.get(key, 0.0) + p_state * p
            else:
                reach[target] = reach.get(target, 0.0) + p_state * p
    return {k: terminal.get(k, 0.0) for k in space.terminal_keys}


def target_distribution(space: StateSpace, log_reward: Callable[[Tree], float]) -> dict[tuple, float]:
    """R(x)/Z over the terminal objects, from a log-reward function of the tree."""
    keys = space.terminal_keys
    logr = np.array([log_reward(space.trees[k]) for k in keys], dtype=np.float64)
    p = np.exp(logr - logr.max())
    p /= p.sum()
    return dict(zip(keys, p.tolist()))


def total_variation(p: dict[tuple, float], q: dict[tuple, float]) -> float:
    """½·Σ|p − q| over the union of supports."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def uniform_policy(space: StateSpace) -> Policy:
    """The policy uniform over legal actions (not over distinct children)."""

    def policy(trees: Sequence[Tree]) -> list[np.ndarray]:
        out = []
        for t in trees:
            n = len(forward_actions(t, space.vocab, space.max_frags))
            out.append(np.full(n, 1.0 / n))
        return out

    return policy
