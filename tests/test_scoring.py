"""Assembly and scoring beside the sampler (molgfn.sampling.scoring) and the cheaper GNN layer give the same results."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.nn import GINEConv

from molgfn.chem.tree import tree_smiles
from molgfn.chem.vocab import load_vocabulary
from molgfn.config import load_config
from molgfn.nn.policy import ProjectedEdgeGINEConv
from molgfn.sampling.pool import ScorePool
from molgfn.sampling.scoring import score_trees
from molgfn.training.algorithm import build_algorithm

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.toml"


def test_projected_edge_layer_equals_the_stock_gine_layer():
    """lin(E_src[c0] + E_dst[c1]) looked up from projected tables = GINEConv applying lin on every edge."""
    torch.manual_seed(0)
    hidden, n_classes, n_nodes, n_edges = 16, 5, 12, 30
    mlp = torch.nn.Sequential(
        torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden)
    )
    stock = GINEConv(mlp, edge_dim=hidden)
    projected = ProjectedEdgeGINEConv(mlp, edge_dim=hidden)
    projected.load_state_dict(stock.state_dict())
    src_emb, dst_emb = torch.randn(n_classes, hidden), torch.randn(n_classes, hidden)
    x = torch.randn(n_nodes, hidden)
    edge_index = torch.randint(0, n_nodes, (2, n_edges))
    c0, c1 = torch.randint(0, n_classes, (n_edges,)), torch.randint(0, n_classes, (n_edges,))
    expected = stock(x, edge_index, src_emb[c0] + dst_emb[c1])
    w, b = stock.lin.weight, stock.lin.bias
    table_src = torch.nn.functional.linear(src_emb, w, b)
    table_dst = torch.nn.functional.linear(dst_emb, w)
    got = projected(x, edge_index, table_src[c0] + table_dst[c1])
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, stock(x, edge_index, table_src[c0]), atol=1e-3)  # the tables matter


def test_split_query_head_equals_the_head_on_the_concatenation():
    """The per-block first layer of the ADD query = query_head applied to [h(node), orbit, g(state)]."""
    cfg = load_config(TINY, ["env.max_frags=4"])
    gfn = build_algorithm(cfg)
    torch.manual_seed(1)
    for p in gfn.policy.parameters():  # away from the initialisation, so every block carries weight
        p.data.normal_(0.0, 0.3)
    trajs = gfn.sampler.sample(np.full(16, 4.0), np.random.default_rng(0), score=False)
    policy = gfn.policy
    beta = torch.full((len(trajs.states),), 4.0)
    inp, h, g, _, _ = policy.encode(trajs.states, beta)
    assert len(inp.open_node) > 16
    expected = policy.query_head(
        torch.cat([h[inp.open_node], policy.open_stem_emb(inp.open_class), g[inp.open_graph]], 1)
    )
    got = policy._query(inp, h, g)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, policy._query(inp, h, torch.zeros_like(g)), atol=1e-2)


def _sample(workers: int, state_rewards: bool = False):
    cfg = load_config(TINY, [f"run.workers={workers}", "train.batch_size=32", "env.max_frags=3"])
    gfn = build_algorithm(cfg)
    try:
        rng = np.random.default_rng(3)
        torch.manual_seed(3)
        return [
            gfn.sampler.sample(gfn.draw_beta(32), rng, epsilon=0.1, state_rewards=state_rewards)
            for _ in range(3)
        ]
    finally:
        gfn.close()


@pytest.mark.parametrize("state_rewards", [False, True], ids=["terminal", "every-state"])
def test_scoring_in_a_worker_gives_the_in_process_results(state_rewards):
    here, pooled = _sample(0, state_rewards), _sample(1, state_rewards)
    for a, b in zip(here, pooled):
        assert a.smiles == b.smiles
        assert [t.frags for t in a.trees] == [t.frags for t in b.trees]
        np.testing.assert_array_equal(a.score, b.score)
        np.testing.assert_array_equal(a.log_reward, b.log_reward)
        np.testing.assert_array_equal(a.log_w, b.log_w)
        assert a.components.keys() == b.components.keys()
        for name in a.components:
            np.testing.assert_array_equal(a.components[name], b.components[name])
        if state_rewards:
            np.testing.assert_array_equal(a.state_log_reward, b.state_log_reward)
    assert len({s for t in here for s in t.smiles}) > 10  # varied molecules, not one repeated


def pid_score(smiles):
    """A slow score that records which process computed it."""
    time.sleep(0.02)
    return np.full(len(smiles), 0.5), {"pid": np.full(len(smiles), float(os.getpid()))}


def test_pool_returns_pieces_in_order_and_takes_back_unstarted_ones():
    vocab = load_vocabulary("tiny")
    cfg = load_config(TINY, ["train.batch_size=64"])
    gfn = build_algorithm(cfg, score_fn=pid_score)
    trees = gfn.sampler.sample(np.full(160, 4.0), np.random.default_rng(0), score=False).trees
    pool = ScorePool(vocab, pid_score, workers=1)
    try:
        parts = pool.gather(pool.submit(trees, True), pid_score)
    finally:
        pool.close()
    assert [s for p in parts for s in p.smiles] == [tree_smiles(t, vocab) for t in trees]
    pids = np.concatenate([p.components["pid"] for p in parts])
    assert os.getpid() in set(pids)  # 20 pieces of 20 ms: the caller computed the ones not yet started
    expected = score_trees(trees, vocab, pid_score)
    np.testing.assert_array_equal(np.concatenate([p.log_w for p in parts]), expected.log_w)


def test_generation_stream_with_workers_matches_the_in_process_chunks():
    """Each batch is one chunk here and one per worker, each from its own seed: the worker's chunk is the
    one this process computes from that seed, and chunks of one batch differ."""
    from molgfn.candidates.generate import load_generator
    from molgfn.sampling.pool import generate_chunk

    gen = load_generator()
    try:
        assert gen.pool is not None and gen.pool.workers == 1
        stream = gen.stream(8.0, 64, np.random.default_rng(1), score=True)
        pooled = [next(stream) for _ in range(3)]
        stream.close()
        rng = np.random.default_rng(1)
        sampler, vocab = gen.model.sampler, gen.model.vocab
        for trees, mols in pooled:
            seeds = [int(x) for x in rng.integers(0, 2**63 - 1, size=2)]
            chunks = [generate_chunk(sampler, vocab, gen.scorer, 8.0, 32, seed) for seed in seeds]
            assert mols.smiles == chunks[0][1].smiles + chunks[1][1].smiles
            assert [t.frags for t in trees] == [t.frags for c in chunks for t in c[0]]
            np.testing.assert_array_equal(mols.score, np.concatenate([c[1].score for c in chunks]))
            assert chunks[0][1].smiles != chunks[1][1].smiles
    finally:
        gen.close()
    assert all(len(mols.smiles) == 64 and all(mols.smiles) for _, mols in pooled)
