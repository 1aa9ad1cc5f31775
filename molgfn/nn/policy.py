"""The GFlowNet policy: a torch-geometric GNN over fragment trees (docs/architecture.md, "The policy").

Input: a :class:`~molgfn.chem.env.TreeBatch` and an inverse temperature β per state. Each fragment node
starts from its fragment embedding plus the conditioning vector (a thermometer encoding of β); edges
carry the stem orbits of both ends, so equivalent stems get equal features and the network is invariant
to the tree's symmetries (needed for the symmetry correction, see :mod:`molgfn.chem.tree`). After
``layers`` residual message-passing layers, a graph embedding g = [mean-pool, conditioning] feeds:

- ``stop``: one logit per non-empty state;
- ``first``: one logit per fragment, for the empty state (it sees only the conditioning);
- ``add``: for each open stem, a query vector from (node, stem orbit, g), dotted with an embedding of each
  vocabulary stem: logits of shape (open stems, T);
- ``backward``: one logit per removable leaf (learned P_B);
- ``log_flow``: log F(s) per state (DB, SubTB, FL-DB); ``log_z``: log Z(β) (TB).

The action space of a state is ragged (STOP, FIRST f, or ADD over open stems × T) and is normalised with
a segment log-sum-exp, so nothing is padded and no logit is ever set to −inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv, GINEConv, TransformerConv, global_mean_pool

from molgfn.chem.env import ADD, FIRST, STOP, BatchActions, FragmentEnv, TreeBatch


def thermometer(beta: Tensor, bins: int, scale: float) -> Tensor:
    """Thermometer encoding of β on [0, scale] with ``bins`` steps, plus β/scale itself."""
    edges = torch.linspace(0.0, scale, bins + 1, device=beta.device)[:-1]
    width = scale / bins
    enc = ((beta[:, None] - edges[None, :]) / width).clamp(0.0, 1.0)
    return torch.cat([enc, (beta / scale)[:, None]], dim=1)


def segment_logsumexp(values: Tensor, index: Tensor, size: int) -> Tensor:
    """log Σ exp(values) over entries sharing ``index``; -inf where a segment is empty."""
    out = torch.full((size,), float("-inf"), dtype=values.dtype, device=values.device)
    if values.numel() == 0:
        return out
    peak = torch.full((size,), float("-inf"), dtype=values.dtype, device=values.device)
    peak = peak.scatter_reduce(0, index, values, reduce="amax", include_self=True)
    safe_peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak)).detach()
    total = torch.zeros(size, dtype=values.dtype, device=values.device)
    total = total.index_add(0, index, torch.exp(values - safe_peak[index]))
    return torch.where(total > 0, torch.log(total.clamp_min(1e-38)) + safe_peak, out)


class ProjectedEdgeGINEConv(GINEConv):
    """GINEConv (Hu et al., ICLR 2020) whose edge features arrive already projected by its ``lin``.

    Edge features here are a sum of two stem-orbit embeddings, so ``lin(e) = W·E_src[c0] + W·E_dst[c1] + b``
    is a lookup into two small projected tables (:meth:`FragmentPolicy.encode`) instead of a matrix
    product on every edge, which was about half the cost of each layer. Parameters and results are those
    of the stock layer (tested).
    """

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return (x_j + edge_attr).relu()


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out)
    )


@dataclass
class GraphInputs:
    """Tensors of one batch of states, built from the numpy arrays without RDKit."""

    x_frag: Tensor  # (nodes,) fragment id of each node
    node_graph: Tensor  # (nodes,) state index of each node
    node_local: Tensor  # (nodes,) index of the node within its state
    edge_index: Tensor  # (2, 2*edges)
    edge_class: Tensor  # (2*edges, 2) stem orbit of source end, target end
    open_graph: Tensor  # (open,) state of each open stem
    open_node: Tensor  # (open,) global node index
    open_class: Tensor  # (open,) stem orbit id
    open_position: Tensor  # (open,) flat (node * S + stem) position within its state
    leaf_graph: Tensor  # (leaves,) state of each removable leaf
    leaf_node: Tensor  # (leaves,) global node index
    leaf_local: Tensor  # (leaves,) node index within its state
    n_states: int
    empty: Tensor  # (B,) bool
    can_grow: Tensor  # (B,) bool


def graph_inputs(env: FragmentEnv, batch: TreeBatch, device: torch.device) -> GraphInputs:
    b, n, s = batch.link.shape
    exists = batch.frag >= 0
    graph_of, local_of = np.nonzero(exists)
    global_id = np.full((b, n), -1, dtype=np.int64)
    global_id[graph_of, local_of] = np.arange(len(graph_of))
    x_frag = batch.frag[graph_of, local_of]

    gb, gu, gs = np.nonzero(batch.link >= 0)
    gv = batch.link[gb, gu, gs]
    gvs = batch.link_stem[gb, gu, gs]
    classes = env.vocab.stem_class_table
    src = global_id[gb, gu]
    dst = global_id[gb, gv]
    edge_class = np.stack([classes[batch.frag[gb, gu], gs], classes[batch.frag[gb, gv], gvs]], axis=1)

    open_mask = env.open_stems(batch)
    ob, ou, os_ = np.nonzero(open_mask)
    leaf_mask = env.leaves(batch)
    lb, lu = np.nonzero(leaf_mask)

    def t(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long, device=device)

    return GraphInputs(
        x_frag=t(x_frag),
        node_graph=t(graph_of),
        node_local=t(local_of),
        edge_index=t(np.stack([src, dst]))
        if len(src)
        else torch.zeros(2, 0, dtype=torch.long, device=device),
        edge_class=t(edge_class) if len(src) else torch.zeros(0, 2, dtype=torch.long, device=device),
        open_graph=t(ob),
        open_node=t(global_id[ob, ou]),
        open_class=t(classes[batch.frag[ob, ou], os_]),
        open_position=t(ou * s + os_),
        leaf_graph=t(lb),
        leaf_node=t(global_id[lb, lu]),
        leaf_local=t(lu),
        n_states=b,
        empty=torch.as_tensor(batch.n_nodes == 0, device=device),
        can_grow=torch.as_tensor((batch.n_nodes < env.max_frags) & (batch.n_nodes > 0), device=device),
    )


@dataclass
class PolicyOutput:
    """Logits of one batch of states, with the per-state normaliser over the legal actions."""

    inputs: GraphInputs
    stop: Tensor  # (B,)
    first: Tensor  # (B, F)
    add: Tensor  # (open, T)
    backward: Tensor  # (leaves,)
    log_flow: Tensor  # (B,)
    log_z: Tensor  # (B,)
    log_norm: Tensor  # (B,)
    max_stems: int
    n_positions: int  # N * S, flat open-stem positions per state
    add_rows: Tensor | None = None  # (open,) log-sum-exp of each ADD row over the vocabulary stems

    def log_prob(self, actions: BatchActions, target: np.ndarray) -> Tensor:
        """log π(a|s) of one action per state (``target``: index of the ADD's vocabulary stem)."""
        inp = self.inputs
        device = self.stop.device
        kind = torch.as_tensor(actions.kind, device=device)
        logit = torch.zeros(inp.n_states, device=device)
        is_stop = kind == STOP
        logit = torch.where(is_stop, self.stop, logit)
        is_first = kind == FIRST
        frag = torch.as_tensor(actions.frag, dtype=torch.long, device=device)
        logit = torch.where(is_first, self.first.gather(1, frag[:, None]).squeeze(1), logit)
        rows = np.nonzero(actions.kind == ADD)[0]
        if len(rows):
            row_of = self.add_row_lookup()
            position = actions.node[rows].astype(np.int64) * self.max_stems + actions.stem[rows]
            add_rows = torch.as_tensor(row_of[rows, position], dtype=torch.long, device=device)
            add_logit = self.add[add_rows, torch.as_tensor(target[rows], dtype=torch.long, device=device)]
            logit = logit.index_put((torch.as_tensor(rows, device=device),), add_logit)
        return logit - self.log_norm

    def add_row_lookup(self) -> np.ndarray:
        """(B, N*S) row index into ``add`` of each open stem position, -1 elsewhere."""
        inp = self.inputs
        table = np.full((inp.n_states, self.n_positions), -1, dtype=np.int64)
        table[inp.open_graph.cpu().numpy(), inp.open_position.cpu().numpy()] = np.arange(len(inp.open_graph))
        return table

    def log_pb(self, batch_leaf: np.ndarray) -> Tensor:
        """Learned log P_B of removing node ``batch_leaf[i]`` of state i (0 for the empty state)."""
        inp = self.inputs
        norm = segment_logsumexp(self.backward, inp.leaf_graph, inp.n_states)
        device = self.stop.device
        chosen = torch.zeros(inp.n_states, device=device)
        leaf = torch.as_tensor(batch_leaf, dtype=torch.long, device=device)
        hit = inp.leaf_local == leaf[inp.leaf_graph]
        chosen = chosen.index_put((inp.leaf_graph[hit],), self.backward[hit])
        return torch.where(torch.isfinite(norm), chosen - norm, torch.zeros_like(norm))

    def all_log_probs(self) -> tuple[Tensor, Tensor]:
        """log π of every legal action of every state, grouped by state (stop, first, then ADD rows in
        open-stem order × T), and the state of each entry. The order depends only on the states, so two
        evaluations of the same states (old and new parameters) align entry by entry."""
        inp = self.inputs
        device = self.stop.device
        states = torch.arange(inp.n_states, device=device)
        nonempty = ~inp.empty
        parts = [self.stop[nonempty] - self.log_norm[nonempty]]
        index = [states[nonempty]]
        empty_states = states[inp.empty]
        parts.append((self.first[inp.empty] - self.log_norm[inp.empty, None]).reshape(-1))
        index.append(empty_states.repeat_interleave(self.first.shape[1]))
        grow = inp.can_grow[inp.open_graph]
        rows = self.add[grow] - self.log_norm[inp.open_graph[grow], None]
        parts.append(rows.reshape(-1))
        index.append(inp.open_graph[grow].repeat_interleave(self.add.shape[1]))
        values, index = torch.cat(parts), torch.cat(index)
        order = torch.sort(index, stable=True).indices
        return values[order], index[order]

    def flat_probs(self) -> list[np.ndarray]:
        """Per state, π over its legal actions in the order of :func:`molgfn.chem.tree.forward_actions`."""
        inp = self.inputs
        out = []
        stop = self.stop.detach().cpu().numpy()
        first = self.first.detach().cpu().numpy()
        add = self.add.detach().cpu().numpy()
        norm = self.log_norm.detach().cpu().numpy()
        open_graph = inp.open_graph.cpu().numpy()
        grow = inp.can_grow.cpu().numpy()
        for i in range(inp.n_states):
            if inp.empty[i]:
                logits = first[i]
            else:
                rows = add[open_graph == i].reshape(-1) if grow[i] else np.zeros(0)
                logits = np.concatenate([[stop[i]], rows])
            out.append(np.exp(logits - norm[i]))
        return out


class FragmentPolicy(nn.Module):
    """GNN policy with forward, backward, flow and log Z heads, conditioned on β."""

    def __init__(
        self,
        env: FragmentEnv,
        hidden: int = 128,
        layers: int = 4,
        layer: str = "gine",
        beta_bins: int = 32,
        beta_scale: float = 64.0,
    ):
        super().__init__()
        vocab = env.vocab
        self.env = env
        self.beta_bins, self.beta_scale = beta_bins, beta_scale
        n_cond = beta_bins + 1
        self.frag_emb = nn.Embedding(len(vocab), hidden)
        self.cond_proj = mlp(n_cond, hidden, hidden)
        self.stem_src = nn.Embedding(vocab.n_stem_classes, hidden)
        self.stem_dst = nn.Embedding(vocab.n_stem_classes, hidden)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(layers):
            if layer == "gine":
                conv = ProjectedEdgeGINEConv(mlp(hidden, hidden, hidden), edge_dim=hidden)
            elif layer == "gat":
                conv = GATv2Conv(hidden, hidden // 4, heads=4, edge_dim=hidden)
            elif layer == "transformer":
                conv = TransformerConv(hidden, hidden // 4, heads=4, edge_dim=hidden)
            else:
                raise ValueError(f"unknown layer type {layer!r}: gine, gat or transformer")
            self.convs.append(conv)
            self.norms.append(nn.LayerNorm(hidden))
        self.stop_head = mlp(2 * hidden, hidden, 1)
        self.first_head = mlp(hidden, hidden, len(vocab))
        self.query_head = mlp(4 * hidden, hidden, hidden)
        self.open_stem_emb = nn.Embedding(vocab.n_stem_classes, hidden)
        self.target_frag = nn.Embedding(len(vocab), hidden)
        self.target_stem = nn.Embedding(vocab.n_stem_classes, hidden)
        self.target_head = mlp(hidden, hidden, hidden)
        self.backward_head = mlp(3 * hidden, hidden, 1)
        self.flow_head = mlp(2 * hidden, hidden, 1)
        self.log_z_head = mlp(n_cond, hidden, 1)
        stem_table = vocab.stem_table
        self.register_buffer("target_frag_ids", torch.as_tensor(stem_table[:, 0]), persistent=False)
        self.register_buffer(
            "target_class_ids",
            torch.as_tensor(vocab.stem_class_table[stem_table[:, 0], stem_table[:, 1]]),
            persistent=False,
        )
        self.hidden = hidden

    def conditioning(self, beta: Tensor) -> Tensor:
        return thermometer(beta, self.beta_bins, self.beta_scale)

    def log_z(self, beta: Tensor) -> Tensor:
        return self.log_z_head(self.conditioning(beta)).squeeze(-1)

    def encode(self, batch: TreeBatch, beta: Tensor):
        """Node embeddings h, graph embeddings g = [mean-pool, conditioning] and the inputs."""
        device = beta.device
        inp = graph_inputs(self.env, batch, device)
        cond_raw = self.conditioning(beta)
        cond = self.cond_proj(cond_raw)
        h = self.frag_emb(inp.x_frag) + cond[inp.node_graph]
        src_class, dst_class = inp.edge_class[:, 0], inp.edge_class[:, 1]
        e = None
        for conv, norm in zip(self.convs, self.norms):
            if isinstance(conv, ProjectedEdgeGINEConv):
                # lin(E_src[c0] + E_dst[c1]) from two (orbits, hidden) tables: no per-edge matrix product
                src = nn.functional.linear(self.stem_src.weight, conv.lin.weight, conv.lin.bias)
                dst = nn.functional.linear(self.stem_dst.weight, conv.lin.weight)
                edge = nn.functional.embedding(src_class, src) + nn.functional.embedding(dst_class, dst)
                h = h + conv(norm(h), inp.edge_index, edge)
            else:
                e = self.stem_src(src_class) + self.stem_dst(dst_class) if e is None else e
                h = h + conv(norm(h), inp.edge_index, e)
        pooled = global_mean_pool(h, inp.node_graph, size=inp.n_states) if h.shape[0] else cond * 0
        return inp, h, torch.cat([pooled, cond], dim=1), cond_raw, cond

    def _query(self, inp: GraphInputs, h: Tensor, g: Tensor) -> Tensor:
        """``query_head`` of [h(node), open-stem orbit embedding, g(state)] for every open stem.

        The first linear map is split by input block: the orbit block becomes a lookup into a projected
        (orbits, hidden) table and the state block is computed once per state, not once per open stem.
        Same parameters and function as applying the head to the concatenation (tested), at about a
        quarter of that layer's cost."""
        first, rest = self.query_head[0], self.query_head[1:]
        hidden = self.hidden
        w_node, w_stem, w_state = first.weight.split([hidden, hidden, 2 * hidden], dim=1)
        stems = nn.functional.linear(self.open_stem_emb.weight, w_stem)
        states = nn.functional.linear(g, w_state, first.bias)
        pre = (
            nn.functional.linear(h[inp.open_node], w_node)
            + nn.functional.embedding(inp.open_class, stems)
            + states[inp.open_graph]
        )
        return rest(pre)

    def state_value(self, batch: TreeBatch, beta: Tensor) -> Tensor:
        """The flow head alone: a critic V(s) when this network serves as a value network."""
        return self.flow_head(self.encode(batch, beta)[2]).squeeze(-1)

    def forward(self, batch: TreeBatch, beta: Tensor, sampling: bool = False) -> PolicyOutput:
        """All heads; with ``sampling`` only those that choose actions (the backward, flow and log Z
        outputs are then empty or zero), which is what rolling out trajectories needs."""
        inp, h, g, cond_raw, cond = self.encode(batch, beta)
        stop = self.stop_head(g).squeeze(-1)
        first = self.first_head(cond)
        query = self._query(inp, h, g)
        keys = self.target_head(
            self.target_frag(self.target_frag_ids) + self.target_stem(self.target_class_ids)
        )
        add = query @ keys.T / self.hidden**0.5
        if sampling:
            backward = h.new_zeros(len(inp.leaf_node), 1)
            log_flow = log_z = h.new_zeros(inp.n_states)
        else:
            backward = self.backward_head(torch.cat([h[inp.leaf_node], g[inp.leaf_graph]], 1))
            log_flow = self.flow_head(g).squeeze(-1)
            log_z = self.log_z_head(cond_raw).squeeze(-1)

        # normaliser over legal actions: FIRST for empty states; STOP (+ ADD when below the size bound) otherwise
        grow = inp.can_grow[inp.open_graph]
        add_rows = torch.logsumexp(add, dim=1) if add.shape[0] else add.new_zeros(0)
        add_norm = segment_logsumexp(add_rows[grow], inp.open_graph[grow], inp.n_states)
        # keep every branch finite: torch.where passes zero gradients to the unused branch, but an -inf there
        # still turns second derivatives (TRPO's Fisher products) into NaN
        has_add = torch.isfinite(add_norm)
        with_add = torch.logaddexp(stop, torch.where(has_add, add_norm, torch.zeros_like(add_norm)))
        log_norm = torch.where(inp.empty, torch.logsumexp(first, dim=1), torch.where(has_add, with_add, stop))
        n_positions = self.env.max_frags * self.env.max_stems
        backward = backward.squeeze(-1)
        return PolicyOutput(
            inp,
            stop,
            first,
            add,
            backward,
            log_flow,
            log_z,
            log_norm,
            self.env.max_stems,
            n_positions,
            add_rows,
        )

    @torch.no_grad()
    def sample_actions(
        self, out: PolicyOutput, generator: torch.Generator | None = None
    ) -> tuple[BatchActions, np.ndarray]:
        """Draw one action per state from π (Gumbel-max over the ragged action set).

        Returns the actions and the ADD target index into the vocabulary stem table (-1 otherwise).
        """
        inp = out.inputs
        device = out.stop.device

        def gumbel(shape):
            u = torch.rand(shape, generator=generator, device=device).clamp(1e-12, 1 - 1e-12)
            return -torch.log(-torch.log(u))

        # Gumbel-max in two stages, exact and with far fewer draws than one per (open stem, vocabulary stem):
        # STOP against each open stem's row with the row's log-sum-exp, then the vocabulary stem within the
        # winning row. P(row r, stem t) = exp(lse_r)/Z · exp(add[r, t] − lse_r) = exp(add[r, t])/Z.
        b = inp.n_states
        empty = inp.empty.cpu().numpy()
        frag = np.zeros(b, dtype=np.int32)
        if empty.any():  # FIRST only where the state is empty
            first = out.first[torch.as_tensor(empty, device=device)]
            frag[empty] = (first + gumbel(first.shape)).argmax(dim=1).cpu().numpy()
        stop_score = out.stop + gumbel((b,))
        add_rows = out.add_rows if out.add_rows is not None else torch.logsumexp(out.add, dim=1)
        grow = inp.can_grow[inp.open_graph]
        row_best = add_rows + gumbel(add_rows.shape)
        row_best = torch.where(grow, row_best, torch.full_like(row_best, float("-inf")))
        best_add = torch.full((b,), float("-inf"), device=device).scatter_reduce(
            0, inp.open_graph, row_best, reduce="amax", include_self=True
        )
        # the row that attains each state's best ADD score
        is_best = (row_best == best_add[inp.open_graph]) & torch.isfinite(row_best)
        best_row = torch.full((b,), -1, dtype=torch.long, device=device)
        rows_idx = torch.arange(len(row_best), device=device)
        best_row = best_row.scatter_reduce(
            0, inp.open_graph[is_best], rows_idx[is_best], reduce="amax", include_self=True
        )

        kind = np.where(empty, FIRST, np.where((best_add > stop_score).cpu().numpy(), ADD, STOP))
        node = np.zeros(b, dtype=np.int32)
        stem = np.zeros(b, dtype=np.int32)
        frag_stem = np.zeros(b, dtype=np.int32)
        target = np.full(b, -1, dtype=np.int64)
        rows = np.nonzero(kind == ADD)[0]
        if len(rows):
            r = best_row.cpu().numpy()[rows]
            r_t = torch.as_tensor(r, device=device)
            t = (out.add[r_t] + gumbel((len(r), out.add.shape[1]))).argmax(dim=1).cpu().numpy()
            position = inp.open_position.cpu().numpy()[r]
            node[rows], stem[rows] = np.divmod(position, self.env.max_stems)
            frag[rows] = self.env.stem_table[t, 0]
            frag_stem[rows] = self.env.stem_table[t, 1]
            target[rows] = t
        return BatchActions(kind.astype(np.int32), node, stem, frag, frag_stem), target
