"""The batched environment (FragmentEnv, TreeBatch) checked against the Tree reference implementation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from rdkit import Chem
from scipy.stats import chi2

from molgfn.chem.env import ADD, FIRST, NOOP, STOP, BatchActions, FragmentEnv, TreeBatch
from molgfn.chem.tree import Add, First, Stop, Tree, assembly_smiles, forward_actions, tree_smiles
from molgfn.chem.vocab import load_vocabulary, vocabulary_from_smiles


@pytest.fixture(scope="module", params=[("tiny", 4), ("default", 9)], ids=["tiny", "default"])
def env(request):
    name, max_frags = request.param
    return FragmentEnv(load_vocabulary(name), max_frags=max_frags)


def check_valid_tree(tree: Tree, env: FragmentEnv) -> None:
    vocab = env.vocab
    n = tree.n_nodes
    assert n <= env.max_frags
    assert all(0 <= f < len(vocab) for f in tree.frags)
    assert len(tree.edges) == max(n - 1, 0)
    used = set()
    adjacency: list[set[int]] = [set() for _ in range(n)]
    for u, su, v, sv in tree.edges:
        assert 0 <= u < v < n
        assert 0 <= su < vocab[tree.frags[u]].n_stems and 0 <= sv < vocab[tree.frags[v]].n_stems
        assert (u, su) not in used and (v, sv) not in used  # each stem used at most once
        used |= {(u, su), (v, sv)}
        adjacency[u].add(v)
        adjacency[v].add(u)
    if n:  # connected
        seen, stack = {0}, [0]
        while stack:
            for w in adjacency[stack.pop()] - seen:
                seen.add(w)
                stack.append(w)
        assert len(seen) == n


def check_arrays(batch: TreeBatch, env: FragmentEnv) -> None:
    """The array invariants: -1 frag / -2 link past the last node and past a fragment's stems, and every
    link mirrored by the other end."""
    n_stems = env.vocab.n_stems
    for i in range(len(batch)):
        n = int(batch.n_nodes[i])
        assert np.all(batch.frag[i, n:] == -1) and np.all(batch.link[i, n:] == -2)
        for v in range(n):
            f = int(batch.frag[i, v])
            assert np.all(batch.link[i, v, n_stems[f] :] == -2)
            assert np.all(batch.link[i, v, : n_stems[f]] >= -1)
            for s in np.nonzero(batch.link[i, v] >= 0)[0]:
                w, sw = batch.link[i, v, s], batch.link_stem[i, v, s]
                assert w < n and w != v
                assert batch.link[i, w, sw] == v and batch.link_stem[i, w, sw] == s


def to_tree_action(actions: BatchActions, i: int):
    kind = actions.kind[i]
    if kind == STOP:
        return Stop()
    if kind == FIRST:
        return First(int(actions.frag[i]))
    if kind == ADD:
        return Add(
            int(actions.node[i]), int(actions.stem[i]), int(actions.frag[i]), int(actions.frag_stem[i])
        )
    return None


def test_random_rollouts_agree_with_the_tree_reference(env):
    rng = np.random.default_rng(42)
    batch = env.empty(48)
    trees = [Tree() for _ in range(len(batch))]
    stopped = [False] * len(batch)
    steps = 0
    while not batch.done.all():
        check_arrays(batch, env)
        opened = env.open_stems(batch)
        leaves = env.leaves(batch)
        # from_trees round-trips through the arrays
        again = env.from_trees(batch.trees())
        for name in ("frag", "link", "link_stem", "n_nodes"):
            assert np.array_equal(getattr(again, name), getattr(batch, name)), name
        for i in range(len(batch)):
            tree = batch.tree(i)
            assert tree == trees[i]
            check_valid_tree(tree, env)
            if stopped[i]:
                assert not opened[i].any()
                continue
            expected = tree.open_stems(env.vocab) if tree.n_nodes < env.max_frags else []
            assert sorted(zip(*np.nonzero(opened[i]))) == expected
            assert np.nonzero(leaves[i])[0].tolist() == (tree.leaves() if tree.n_nodes else [])
        actions = env.random_actions(batch, rng)
        for i in range(len(batch)):
            a = to_tree_action(actions, i)
            if stopped[i]:
                assert a is None  # NOOP for finished rows
                continue
            assert a in forward_actions(trees[i], env.vocab, env.max_frags)
            if isinstance(a, Stop):
                stopped[i] = True
            else:
                trees[i] = trees[i].add(a)
        env.step(batch, actions)
        assert batch.done.tolist() == stopped
        steps += 1
        assert steps <= env.max_frags + 1
    final = batch.trees()
    assert final == trees
    sizes = Counter(t.n_nodes for t in final)
    assert max(sizes) <= env.max_frags and min(sizes) >= 1
    for tree, smiles in zip(final, env.smiles(batch)):
        mol = Chem.MolFromSmiles(smiles)
        assert mol is not None
        assert Chem.SanitizeMol(mol) == Chem.SanitizeFlags.SANITIZE_NONE
        assert mol.GetNumHeavyAtoms() == sum(env.vocab[f].n_atoms for f in tree.frags)
        assert not any(a.GetAtomicNum() == 0 for a in mol.GetAtoms())
        assert len(Chem.GetMolFrags(mol)) == 1


def test_rollouts_reach_the_size_bound_and_stop_there():
    # a vocabulary where every fragment has 2+ stems never runs out of open stems, so long rollouts hit
    # the bound; there the only legal action is STOP
    env = FragmentEnv(load_vocabulary("tiny"), max_frags=3)
    rng = np.random.default_rng(1)
    batch, transitions = env.random_rollout(2000, rng)
    sizes = batch.n_nodes
    assert sizes.max() == 3 and sizes.min() == 1
    # each trajectory: FIRST, one ADD per extra node, STOP
    assert transitions == int(sizes.sum()) + len(batch)
    full = env.from_trees([t for t in batch.trees() if t.n_nodes == 3])
    assert not env.open_stems(full).any()
    actions = env.random_actions(full, rng)
    assert np.all(actions.kind == STOP)


def test_smiles_of_known_trees():
    vocab = load_vocabulary("tiny")  # methyl, ether, phenyl, amine
    env = FragmentEnv(vocab, max_frags=4)
    anisole = Tree().add(First(1)).add(Add(0, 0, 2, 0)).add(Add(0, 1, 0, 0))
    trimethylamine = Tree().add(First(3)).add(Add(0, 0, 0, 0)).add(Add(0, 1, 0, 0)).add(Add(0, 2, 0, 0))
    batch = env.from_trees([Tree(), Tree().add(First(1)), anisole, trimethylamine])
    assert env.smiles(batch) == ["", "O", "COc1ccccc1", "CN(C)C"]
    assert env.smiles(batch)[2] == tree_smiles(anisole, vocab)


def test_from_trees_accepts_edges_in_any_orientation():
    env = FragmentEnv(load_vocabulary("tiny"), max_frags=4)
    tree = Tree((1, 0, 2), ((1, 0, 0, 0), (2, 0, 0, 1)))  # edges written from the higher node
    row = env.from_trees([tree]).tree(0)
    assert row.frags == tree.frags
    assert sorted(row.edges) == [(0, 0, 1, 0), (0, 1, 2, 0)]
    assert tree_smiles(row, env.vocab) == tree_smiles(tree, env.vocab) == "COc1ccccc1"


def actions_of(*rows) -> BatchActions:
    """BatchActions from (kind, node, stem, frag, frag_stem) rows."""
    cols = list(zip(*rows))
    return BatchActions(*(np.array(c, dtype=np.int32) for c in cols))


@pytest.fixture
def tiny_env():
    return FragmentEnv(load_vocabulary("tiny"), max_frags=3)


def started(env, frag=3) -> TreeBatch:
    """A one-row batch holding a single amine (three open stems)."""
    return env.from_trees([Tree().add(First(frag))])


@pytest.mark.parametrize(
    ("make", "action", "message"),
    [
        (lambda env: env.empty(1), (STOP, 0, 0, 0, 0), "STOP on an empty"),
        (lambda env: started(env), (FIRST, 0, 0, 0, 0), "FIRST on a non-empty"),
        (lambda env: env.empty(1), (FIRST, 0, 0, 4, 0), "fragment"),  # only 4 fragments
        (lambda env: env.empty(1), (FIRST, 0, 0, -1, 0), "fragment"),
        (lambda env: started(env), (ADD, 1, 0, 0, 0), "ADD"),  # node 1 does not exist
        (lambda env: started(env), (ADD, -1, 0, 0, 0), "ADD"),
        (lambda env: started(env), (ADD, 0, -1, 0, 0), "ADD"),  # stem -1 must not wrap around
        (lambda env: started(env, frag=0), (ADD, 0, 1, 0, 0), "ADD"),  # methyl has one stem
        (lambda env: started(env), (ADD, 0, 0, 1, 2), "stem"),  # the ether has stems 0, 1
        (lambda env: started(env), (ADD, 0, 0, 1, -1), "stem"),
        (lambda env: started(env), (ADD, 0, 0, 4, 0), "fragment"),
        (lambda env: started(env), (ADD, 0, 0, -1, 0), "fragment"),
    ],
)
def test_step_rejects_illegal_actions(tiny_env, make, action, message):
    batch = make(tiny_env)
    before = batch.copy()
    with pytest.raises(ValueError, match=message):
        tiny_env.step(batch, actions_of(action))
    for name in ("frag", "link", "link_stem", "n_nodes", "done"):
        assert np.array_equal(getattr(batch, name), getattr(before, name)), name


def test_step_rejects_add_on_a_used_stem_beyond_the_bound_and_after_stop(tiny_env):
    env = tiny_env
    batch = started(env)
    env.step(batch, actions_of((ADD, 0, 1, 0, 0)))
    with pytest.raises(ValueError, match="used stem"):
        env.step(batch, actions_of((ADD, 0, 1, 0, 0)))
    with pytest.raises(ValueError, match="used stem"):  # stem 0 of the new methyl is its link
        env.step(batch, actions_of((ADD, 1, 0, 0, 0)))
    env.step(batch, actions_of((ADD, 0, 0, 0, 0)))
    assert batch.n_nodes[0] == 3 == env.max_frags
    with pytest.raises(ValueError, match="size bound"):
        env.step(batch, actions_of((ADD, 0, 2, 0, 0)))
    stopped = started(env)
    env.step(stopped, actions_of((STOP, 0, 0, 0, 0)))
    with pytest.raises(ValueError, match="finished"):
        env.step(stopped, actions_of((STOP, 0, 0, 0, 0)))
    with pytest.raises(ValueError, match="finished"):
        env.step(stopped, actions_of((ADD, 0, 0, 0, 0)))
    assert stopped.tree(0) == Tree().add(First(3))
    # a rejected row stops the whole batch step: the legal rows are not applied either
    batch = env.from_trees([Tree(), Tree().add(First(0))])
    with pytest.raises(ValueError):
        env.step(batch, actions_of((FIRST, 0, 0, 1, 0), (ADD, 0, 1, 0, 0)))  # methyl has no stem 1
    batch2 = env.from_trees([Tree(), Tree().add(First(0))])
    with pytest.raises(ValueError):
        env.step(batch2, actions_of((STOP, 0, 0, 0, 0), (STOP, 0, 0, 0, 0)))
    assert not batch2.done.any() and batch.n_nodes.tolist() == [0, 1]


def test_noop_rows_are_left_alone(tiny_env):
    batch = tiny_env.from_trees([Tree().add(First(3)), Tree()])
    before = batch.copy()
    tiny_env.step(batch, actions_of((NOOP, 0, 0, 0, 0), (NOOP, 0, 0, 0, 0)))
    assert batch.trees() == before.trees() and not batch.done.any()


def draw(env: FragmentEnv, tree: Tree, n: int, seed: int) -> Counter:
    batch = env.from_trees([tree] * n)
    actions = env.random_actions(batch, np.random.default_rng(seed))
    return Counter(to_tree_action(actions, i) for i in range(n))


@pytest.mark.parametrize(
    "tree",
    [
        Tree(),  # 4 FIRST actions
        Tree().add(First(0)),  # methyl: STOP + 1 open stem x 7 (fragment, stem) targets = 8 actions
        Tree().add(First(1)).add(Add(0, 0, 0, 0)),  # methoxy: STOP + 1 open stem x 7 = 8
        Tree().add(First(3)).add(Add(0, 1, 1, 0)),  # amine-ether: STOP + 3 open stems x 7 = 22 actions
    ],
    ids=["empty", "methyl", "methoxy", "amine-ether"],
)
def test_random_actions_are_uniform_over_legal_actions(tree):
    env = FragmentEnv(load_vocabulary("tiny"), max_frags=4)
    legal = forward_actions(tree, env.vocab, env.max_frags)
    n_per_action = 2000
    counts = draw(env, tree, n_per_action * len(legal), seed=7)
    assert set(counts) == set(legal)  # every legal action drawn, nothing else
    observed = np.array([counts[a] for a in legal], dtype=np.float64)
    statistic = float(((observed - n_per_action) ** 2 / n_per_action).sum())
    assert chi2.sf(statistic, df=len(legal) - 1) > 1e-4, (statistic, observed)


def test_random_actions_only_stop_or_noop_where_nothing_can_grow():
    env = FragmentEnv(load_vocabulary("tiny"), max_frags=2)
    full = Tree().add(First(0)).add(Add(0, 0, 0, 0))  # ethane: no open stem, and at the bound
    counts = draw(env, full, 50, seed=0)
    assert counts == Counter({Stop(): 50})


def reference_smiles(tree: Tree, vocab) -> str:
    """Assembly the slow, obvious way: sanitise the capped pieces, join them, sanitise again."""
    mol = Chem.MolFromSmiles(assembly_smiles(tree, vocab))
    if tree.edges:
        mol = Chem.molzip(mol)
        Chem.SanitizeMol(mol)
    return Chem.MolToSmiles(mol)


def test_assembly_matches_the_reference_on_random_trees():
    # the default vocabulary plus fragments with [nH], charges, a triple bond and N-linked aromatics
    extra = ["*c1nc[nH]c1*", "*[N+](*)(C)C", "*C(=O)[O-]", "*C#C*", "*n1ccnc1", "*c1ccc2[nH]c(*)nc2c1"]
    vocab = vocabulary_from_smiles([f.smiles for f in load_vocabulary("default").fragments[:40]] + extra)
    env = FragmentEnv(vocab, max_frags=6)
    batch, _ = env.random_rollout(300, np.random.default_rng(3))
    trees = batch.trees()
    assert env.smiles(batch) == [reference_smiles(t, vocab) for t in trees]
    assert any(f >= 40 for t in trees for f in t.frags)
