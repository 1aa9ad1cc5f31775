"""Fragment trees: the states of the GFlowNet, their actions, symmetry and assembly into molecules.

A state is a tree of fragment nodes. Node ``i`` holds fragment ``frags[i]``; an edge ``(u, su, v, sv)``
joins stem ``su`` of node ``u`` to stem ``sv`` of node ``v`` by a single bond; each stem is used at most
once. The empty tree is the initial state. Node indices follow insertion order; removing a leaf shifts the
later indices down by one.

Forward actions: ``First(f)`` from the empty tree; otherwise ``Stop()`` or ``Add(u, su, f, sf)`` (attach
a new node of fragment ``f`` by its stem ``sf`` to the open stem ``su`` of node ``u``). Backward actions
remove a leaf (or the only node).

Symmetry (see docs/architecture.md, "Symmetry"). Several actions may lead to isomorphic trees, and several leaves may be
removed to give isomorphic parents. Two trees are isomorphic when a bijection of nodes together with, at
each node, a stem permutation from its fragment's automorphism group maps one onto the other.
:func:`canonical_key` computes a canonical form by AHU-style labelling from the tree's centre, taking at
each node the least image of its stem contents under the fragment's stem group; :func:`automorphism_count`
counts |Aut(x)| the same way. The samplers act per action and use a backward policy uniform over leaves;
this is exact once every reward is multiplied by :func:`symmetry_weight` (Kim et al. 2025,
"Symmetry-Aware GFlowNets"): with m_F(s→s') actions from s to s' and m_B(s'→s) leaves of s' whose removal
gives s, m_F·W(s') = m_B·W(s) where W(s) = |Aut(s)| / Π_v |G_{f_v}|, so trajectory balance with the naive
policies and reward R(x)·W(x) holds exactly when the flow over isomorphism classes is proportional to R.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from rdkit import Chem

from molgfn.chem.vocab import Vocabulary


class Stop(NamedTuple):
    def __repr__(self) -> str:
        return "Stop()"


class First(NamedTuple):
    frag: int


class Add(NamedTuple):
    node: int
    stem: int
    frag: int
    frag_stem: int


Action = Stop | First | Add
STOP = Stop()


@dataclass(frozen=True)
class Tree:
    """An immutable fragment tree (see the module docstring)."""

    frags: tuple[int, ...] = ()
    edges: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def n_nodes(self) -> int:
        return len(self.frags)

    def links(self) -> list[dict[int, tuple[int, int]]]:
        """For each node, ``{stem: (other node, other stem)}`` over its used stems."""
        out: list[dict[int, tuple[int, int]]] = [{} for _ in self.frags]
        for u, su, v, sv in self.edges:
            out[u][su] = (v, sv)
            out[v][sv] = (u, su)
        return out

    def open_stems(self, vocab: Vocabulary) -> list[tuple[int, int]]:
        """Open stems as ``(node, stem)`` pairs, in node then stem order."""
        links = self.links()
        return [
            (u, s) for u, f in enumerate(self.frags) for s in range(vocab[f].n_stems) if s not in links[u]
        ]

    def leaves(self) -> list[int]:
        """Nodes a backward action may remove: degree-1 nodes, or the only node."""
        if self.n_nodes == 1:
            return [0]
        degree = [0] * self.n_nodes
        for u, _, v, _ in self.edges:
            degree[u] += 1
            degree[v] += 1
        return [i for i, d in enumerate(degree) if d == 1]

    def add(self, action: Add | First) -> Tree:
        if isinstance(action, First):
            if self.frags:
                raise ValueError("First() applies to the empty tree only")
            return Tree((action.frag,), ())
        new = self.n_nodes
        return Tree(
            self.frags + (action.frag,), self.edges + ((action.node, action.stem, new, action.frag_stem),)
        )

    def remove(self, leaf: int) -> Tree:
        """The parent obtained by removing ``leaf`` (nodes after it are renumbered)."""

        def shift(i: int) -> int:
            return i - 1 if i > leaf else i

        frags = self.frags[:leaf] + self.frags[leaf + 1 :]
        edges = tuple((shift(u), su, shift(v), sv) for u, su, v, sv in self.edges if u != leaf and v != leaf)
        return Tree(frags, edges)


def forward_actions(tree: Tree, vocab: Vocabulary, max_frags: int) -> list[Action]:
    """Every legal forward action, in a fixed order (Stop first, then First or Add)."""
    if tree.n_nodes == 0:
        return [First(f) for f in range(len(vocab))]
    actions: list[Action] = [STOP]
    if tree.n_nodes < max_frags:
        targets = [(f, s) for f, frag in enumerate(vocab.fragments) for s in range(frag.n_stems)]
        for u, su in tree.open_stems(vocab):
            actions.extend(Add(u, su, f, s) for f, s in targets)
    return actions


def children(tree: Tree, vocab: Vocabulary, max_frags: int) -> Iterator[tuple[Action, Tree]]:
    """``(action, child)`` for every non-stop forward action."""
    for a in forward_actions(tree, vocab, max_frags):
        if not isinstance(a, Stop):
            yield a, tree.add(a)


def grouped_children(tree: Tree, vocab: Vocabulary, max_frags: int) -> dict[tuple, list[Action]]:
    """Forward actions grouped by the canonical key of the state they lead to."""
    groups: dict[tuple, list[Action]] = {}
    for a, child in children(tree, vocab, max_frags):
        groups.setdefault(canonical_key(child, vocab), []).append(a)
    return groups


def parents(tree: Tree, vocab: Vocabulary) -> dict[tuple, tuple[Tree, list[int]]]:
    """Distinct parents: canonical key -> (a parent tree, the leaves whose removal gives it)."""
    out: dict[tuple, tuple[Tree, list[int]]] = {}
    for leaf in tree.leaves():
        parent = tree.remove(leaf)
        key = canonical_key(parent, vocab)
        if key in out:
            out[key][1].append(leaf)
        else:
            out[key] = (parent, [leaf])
    return out


# ---------------------------------------------------------------------------------------------------------
# canonical form and automorphisms

_OPEN: tuple = ()
_PARENT: tuple = (-1,)


def _centre(tree: Tree, adjacency: list[list[int]]) -> list[int]:
    degree = [len(a) for a in adjacency]
    remaining = tree.n_nodes
    layer = [i for i, d in enumerate(degree) if d <= 1]
    removed = [False] * tree.n_nodes
    while remaining > 2:
        nxt = []
        for leaf in layer:
            removed[leaf] = True
            remaining -= 1
            for w in adjacency[leaf]:
                if not removed[w]:
                    degree[w] -= 1
                    if degree[w] == 1:
                        nxt.append(w)
        layer = nxt
    return [i for i in range(tree.n_nodes) if not removed[i]]


def _label(
    node: int, via: int | None, links: list[dict[int, tuple[int, int]]], tree: Tree, vocab: Vocabulary
) -> tuple[tuple, int]:
    """Canonical label and automorphism count of the subtree at ``node``, entered through stem ``via``."""
    frag = vocab[tree.frags[node]]
    content: list[tuple] = [_OPEN] * frag.n_stems
    count = 1
    for stem, (other, other_stem) in links[node].items():
        if stem == via:
            content[stem] = _PARENT
        else:
            # the child is entered through its own stem ``other_stem``, which leads back here
            label, sub_count = _label(other, other_stem, links, tree, vocab)
            content[stem] = label
            count *= sub_count
    images = [tuple(content[g[i]] for i in range(frag.n_stems)) for g in frag.stem_group]
    current = tuple(content)
    count *= sum(1 for img in images if img == current)
    return (tree.frags[node], min(images)), count


def _canonical(tree: Tree, vocab: Vocabulary) -> tuple[tuple, int]:
    if tree.n_nodes == 0:
        return (), 1
    links = tree.links()
    adjacency = [[w for w, _ in lk.values()] for lk in links]
    centre = _centre(tree, adjacency)
    if len(centre) == 1:
        label, count = _label(centre[0], None, links, tree, vocab)
        return ("c", label), count
    u, w = centre
    su = next(s for s, (o, _) in links[u].items() if o == w)
    sw = links[u][su][1]
    lu, cu = _label(u, su, links, tree, vocab)
    lw, cw = _label(w, sw, links, tree, vocab)
    return ("b", min(lu, lw), max(lu, lw)), cu * cw * (2 if lu == lw else 1)


def canonical_key(tree: Tree, vocab: Vocabulary) -> tuple:
    """A hashable key equal for two trees exactly when they are isomorphic."""
    return _canonical(tree, vocab)[0]


def automorphism_count(tree: Tree, vocab: Vocabulary) -> int:
    """|Aut(tree)|, counting node permutations together with the stem permutations at each node."""
    return _canonical(tree, vocab)[1]


def log_symmetry_weight(tree: Tree, vocab: Vocabulary) -> float:
    """log W(x) = log |Aut(x)| − Σ_v log |G_{f_v}|; add it to log R(x) (see the module docstring)."""
    log_w = math.log(automorphism_count(tree, vocab))
    return log_w - sum(math.log(vocab[f].group_order) for f in tree.frags)


# ---------------------------------------------------------------------------------------------------------
# assembly


def assembly_smiles(tree: Tree, vocab: Vocabulary) -> str:
    """Dot-separated SMILES of the fragments, joined stems as matching ``[*:k]``, open stems as ``[H]``."""
    tokens: list[list[str]] = [["[H]"] * vocab[f].n_stems for f in tree.frags]
    for k, (u, su, v, sv) in enumerate(tree.edges, start=1):
        tokens[u][su] = tokens[v][sv] = f"[*:{k}]"
    return ".".join(vocab[f].template.format(*tok) for f, tok in zip(tree.frags, tokens))


_UNSANITISED = Chem.SmilesParserParams()
_UNSANITISED.sanitize = False
_UNSANITISED.removeHs = False


def assemble(tree: Tree, vocab: Vocabulary) -> Chem.Mol | None:
    """The molecule of a tree (open stems capped with hydrogen), sanitised; None for the empty tree."""
    if tree.n_nodes == 0:
        return None
    # Parse unsanitised, join, then sanitise once while removing the [H] caps: sanitising the pieces and
    # again the joined molecule took twice as long (benchmarks/env_bench.py) for the same result.
    mol = Chem.MolFromSmiles(assembly_smiles(tree, vocab), _UNSANITISED)
    if mol is None:
        raise ValueError(f"fragments do not assemble into a valid molecule: {tree}")
    if tree.edges:
        mol = Chem.molzip(mol)
    try:
        return Chem.RemoveHs(mol)  # sanitises
    except Chem.rdchem.MolSanitizeException as exc:
        raise ValueError(f"fragments do not assemble into a valid molecule: {tree} ({exc})") from None


def tree_smiles(tree: Tree, vocab: Vocabulary) -> str:
    """Canonical SMILES of the assembled molecule ('' for the empty tree)."""
    mol = assemble(tree, vocab)
    return "" if mol is None else Chem.MolToSmiles(mol)
