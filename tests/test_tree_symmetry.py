"""Fragment trees on the tiny vocabulary: parents and children, symmetry, exact enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem

from molgfn.chem.enumerate import (
    enumerate_states,
    exact_terminal_distribution,
    target_distribution,
    total_variation,
    uniform_policy,
)
from molgfn.chem.tree import (
    Add,
    First,
    Stop,
    Tree,
    automorphism_count,
    canonical_key,
    children,
    forward_actions,
    grouped_children,
    log_symmetry_weight,
    parents,
    tree_smiles,
)
from molgfn.chem.vocab import load_vocabulary, vocabulary_from_smiles


@pytest.fixture(scope="module")
def tiny():
    return load_vocabulary("tiny")


@pytest.fixture(scope="module")
def tiny_space(tiny):
    return enumerate_states(tiny, max_frags=4)


def rdkit_labelled_key(tree: Tree, vocab) -> str:
    """Ground truth independent of canonical_key: canonical SMILES of the fragment graph where every atom
    carries its fragment id as isotope, every stem stays a dummy atom, and a joined pair of stems is a
    dummy-dummy bond. Graph isomorphism of this object is fragment-tree isomorphism."""
    combined = Chem.RWMol()
    stem_atoms = []
    for f in tree.frags:
        mol = Chem.MolFromSmiles(vocab[f].smiles)
        offset = combined.GetNumAtoms()
        for atom in mol.GetAtoms():
            new = Chem.Atom(atom.GetAtomicNum())
            new.SetIsotope(f + 1)
            new.SetFormalCharge(atom.GetFormalCharge())
            new.SetIsAromatic(atom.GetIsAromatic())
            new.SetNoImplicit(True)
            combined.AddAtom(new)
        for bond in mol.GetBonds():
            combined.AddBond(
                bond.GetBeginAtomIdx() + offset, bond.GetEndAtomIdx() + offset, bond.GetBondType()
            )
        stem_atoms.append([a.GetIdx() + offset for a in mol.GetAtoms() if a.GetAtomicNum() == 0])
    for u, su, v, sv in tree.edges:
        combined.AddBond(stem_atoms[u][su], stem_atoms[v][sv], Chem.BondType.SINGLE)
    mol = combined.GetMol()
    mol.UpdatePropertyCache(strict=False)
    return Chem.MolToSmiles(mol, canonical=True)


def test_canonical_key_agrees_with_rdkit_graph_isomorphism(tiny, tiny_space):
    # every tree reached by any action, grouped two ways: by canonical_key and by RDKit
    trees = [child for key in tiny_space.keys for _, child in children(tiny_space.trees[key], tiny, 4)]
    by_key, by_rdkit = {}, {}
    for t in trees:
        by_key.setdefault(canonical_key(t, tiny), set()).add(rdkit_labelled_key(t, tiny))
        by_rdkit.setdefault(rdkit_labelled_key(t, tiny), set()).add(canonical_key(t, tiny))
    assert all(len(v) == 1 for v in by_key.values())
    assert all(len(v) == 1 for v in by_rdkit.values())
    assert len(by_key) == len(tiny_space.keys) - 1  # every state but the empty one is somebody's child


def test_canonical_key_separates_ortho_meta_para_of_a_four_stem_ring():
    # 1,2,4,5-tetrasubstituted benzene: all four stems equivalent, but pairs are ortho, meta or para
    vocab = vocabulary_from_smiles(["*c1cc(*)c(*)cc1*", "*C"])
    ring = Tree().add(First(0)).add(Add(0, 0, 1, 0))
    seconds = {}
    for s in range(1, 4):
        t = ring.add(Add(0, s, 1, 0))
        seconds.setdefault(canonical_key(t, vocab), set()).add(tree_smiles(t, vocab))
    by_smiles = {tree_smiles(ring.add(Add(0, s, 1, 0)), vocab) for s in range(1, 4)}
    assert len(seconds) == len(by_smiles) == 3
    assert vocab[0].group_order == 4


def test_children_and_parents_are_mutual(tiny, tiny_space):
    for key in tiny_space.keys:
        tree = tiny_space.trees[key]
        for child_key in grouped_children(tree, tiny, 4):
            child = tiny_space.trees[child_key]
            assert key in parents(child, tiny), f"{child} does not list {tree} as a parent"
        for parent_key in parents(tree, tiny):
            parent = tiny_space.trees[parent_key]
            assert key in grouped_children(parent, tiny, 4), f"{parent} does not list {tree} as a child"


def test_distinct_parents_match_grouped_leaf_removals(tiny, tiny_space):
    for key in tiny_space.keys:
        tree = tiny_space.trees[key]
        groups = parents(tree, tiny)
        truth = {
            rdkit_labelled_key(tree.remove(leaf), tiny) if tree.n_nodes > 1 else "" for leaf in tree.leaves()
        }
        assert len(groups) == len(truth)
        assert sum(len(leaves) for _, leaves in groups.values()) == len(tree.leaves())


def test_symmetry_weight_balances_action_and_leaf_counts(tiny, tiny_space):
    # m_F(s->s') * W(s') == m_B(s'->s) * W(s) on every edge: what makes per-action sampling exact
    for key in tiny_space.keys:
        tree = tiny_space.trees[key]
        w_s = log_symmetry_weight(tree, tiny)
        for child_key, actions in grouped_children(tree, tiny, 4).items():
            child = tiny_space.trees[child_key]
            m_b = len(parents(child, tiny)[key][1])
            lhs = math.log(len(actions)) + log_symmetry_weight(child, tiny)
            assert lhs == pytest.approx(math.log(m_b) + w_s, abs=1e-12)


def test_automorphism_counts_by_hand(tiny):
    methyl, ether, amine = 0, 1, 3
    assert automorphism_count(Tree().add(First(amine)), tiny) == 6  # N with three open stems
    dimethylamine = Tree().add(First(amine)).add(Add(0, 0, methyl, 0)).add(Add(0, 2, methyl, 0))
    assert automorphism_count(dimethylamine, tiny) == 2
    trimethylamine = dimethylamine.add(Add(0, 1, methyl, 0))
    assert automorphism_count(trimethylamine, tiny) == 6
    peroxide = Tree().add(First(ether)).add(Add(0, 1, ether, 0))
    assert automorphism_count(peroxide, tiny) == 2  # swap the two oxygens (bicentre)


def test_uniform_policy_distribution_sums_to_one(tiny_space):
    p = exact_terminal_distribution(tiny_space, uniform_policy(tiny_space))
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-12)
    assert min(p.values()) > 0


@pytest.mark.parametrize(("max_frags", "n_states", "n_terminal"), [(1, 3, 2), (2, 6, 5), (3, 9, 8)])
def test_state_counts_match_hand_count(max_frags, n_states, n_terminal):
    # methyl (1 stem) and ether oxygen (2 equivalent stems). By hand: C, O | CC, CO, OO |
    # COC, COO, OOO (the size-3 trees need the oxygen, the only fragment with two stems, in the middle)
    vocab = vocabulary_from_smiles(["*C", "*O*"])
    space = enumerate_states(vocab, max_frags)
    assert len(space.keys) == n_states
    assert len(space.terminal_keys) == n_terminal
    expected = {"C", "O", "CC", "CO", "OO", "COC", "COO", "OOO"}
    assert {space.smiles(k) for k in space.terminal_keys} <= expected


def test_every_assembled_molecule_sanitises(tiny, tiny_space):
    for key in tiny_space.terminal_keys:
        smiles = tiny_space.smiles(key)
        mol = Chem.MolFromSmiles(smiles)
        assert mol is not None and Chem.SanitizeMol(mol) == Chem.SanitizeFlags.SANITIZE_NONE
        n_heavy = sum(tiny[f].n_atoms for f in tiny_space.trees[key].frags)
        assert mol.GetNumHeavyAtoms() == n_heavy


def test_symmetric_stems_do_not_double_a_childs_probability():
    # From the ether oxygen, adding the methyl at stem 0 or stem 1 gives the same molecule CO.
    # A policy uniform over distinct next states gives CO the same share as every other choice.
    vocab = vocabulary_from_smiles(["*C", "*O*"])
    space = enumerate_states(vocab, max_frags=2)
    oxygen = Tree().add(First(1))
    groups = grouped_children(oxygen, vocab, 2)
    co = canonical_key(oxygen.add(Add(0, 0, 0, 0)), vocab)
    assert len(groups[co]) == 2 and len(groups) == 2  # two actions, one child; and OO

    def uniform_over_children(trees):
        out = []
        for t in trees:
            actions = forward_actions(t, vocab, 2)
            grouped = grouped_children(t, vocab, 2)
            n_choices = len(grouped) + (0 if t.n_nodes == 0 else 1)
            probs = np.zeros(len(actions))
            for i, a in enumerate(actions):
                if isinstance(a, Stop):
                    probs[i] = 1 / n_choices
                else:
                    group = next(g for g in grouped.values() if a in g)
                    probs[i] = 1 / n_choices / len(group)
            out.append(probs)
        return out

    p = exact_terminal_distribution(space, uniform_over_children)
    # empty -> C or O (1/2 each); O -> stop, CO, OO (1/3 each); C -> stop, CC, CO (1/3 each)
    assert p[co] == pytest.approx(1 / 2 * 1 / 3 + 1 / 2 * 1 / 3)
    assert p[canonical_key(oxygen.add(Add(0, 0, 1, 0)), vocab)] == pytest.approx(1 / 6)


def test_per_action_policy_with_symmetry_weight_hits_the_target(tiny, tiny_space):
    """Build the exact flows for a target R with per-action forward and per-leaf uniform backward
    policies and reward R·W; the exact terminal distribution must equal R/Z."""
    rng = np.random.default_rng(0)
    log_r = {k: float(rng.normal()) for k in tiny_space.terminal_keys}
    log_w = {k: log_symmetry_weight(tiny_space.trees[k], tiny) for k in tiny_space.keys}
    # F̂(s) = R(s)W(s) + Σ_a F̂(s_a)/L(s_a), computed from the largest states down
    flow = {}
    for key in reversed(tiny_space.keys):
        tree = tiny_space.trees[key]
        total = math.exp(log_r[key] + log_w[key]) if tree.n_nodes else 0.0
        for target in tiny_space.targets[key]:
            if target is not None:
                total += flow[target] / len(tiny_space.trees[target].leaves())
        flow[key] = total

    def ideal(trees):
        out = []
        for t in trees:
            key = canonical_key(t, tiny)
            probs = []
            for target in tiny_space.targets[key]:
                if target is None:
                    probs.append(math.exp(log_r[key] + log_w[key]) / flow[key])
                else:
                    probs.append(flow[target] / len(tiny_space.trees[target].leaves()) / flow[key])
            out.append(np.array(probs))
        return out

    probs = ideal([tiny_space.trees[k] for k in tiny_space.keys])
    assert all(p.sum() == pytest.approx(1.0) for p in probs)
    p = exact_terminal_distribution(tiny_space, ideal)
    target = target_distribution(tiny_space, lambda t: log_r[canonical_key(t, tiny)])
    assert total_variation(p, target) < 1e-9
    # without the symmetry weight the same construction is biased
    assert total_variation(exact_terminal_distribution(tiny_space, uniform_policy(tiny_space)), target) > 0.1
