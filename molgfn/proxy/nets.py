"""The two proxy model families, as torch modules that map features to standardised labels.

- ``gnn``: a GINE message-passing network (Hu et al. 2020, "Strategies for Pre-training Graph Neural
  Networks") over atom graphs, with residual connections, sum + mean pooling and an MLP head.
- ``fp``: a random forest on log-scaled Morgan count fingerprints, the strong classical baseline on
  bioactivity sets (van Tilborg et al. 2022 found fingerprint models hard to beat; on CHEMBL234 it beat
  an MLP on the same fingerprints by 0.07 test RMSE). ``min_samples_leaf=2`` and 150 trees keep it to
  about 3 MB; it is stored as node tensors, not a pickle. Its spread is the std over its trees.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import GINEConv, global_add_pool, global_mean_pool

from molgfn.proxy.featurize import N_ATOM_CODES, N_BOND_CODES, GraphBatch
from molgfn.proxy.options import FAMILIES  # noqa: F401

DEFAULT_HYPERPARAMETERS: dict[str, dict] = {
    "gnn": {"hidden": 64, "layers": 3, "dropout": 0.0, "lr": 1e-3, "weight_decay": 1e-5, "batch_size": 64,
            "max_epochs": 40, "patience": 8},
    "fp": {"trees": 150, "max_features": 0.15, "min_samples_leaf": 2},
}  # fmt: skip


class GraphRegressor(nn.Module):
    """GINE network: atom-code embeddings, ``layers`` residual GINE blocks, sum+mean pooling, MLP head.

    Dropout sits in the head only (and defaults to 0): on two CPU cores, dropout on every node was a
    tenth of the training time, and early stopping on the valid part already limits overfitting.
    """

    def __init__(self, hidden: int = 64, layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        # EmbeddingBag(sum) adds the embeddings of an atom's (bond's) feature codes in one fused op
        self.atom_embedding = nn.EmbeddingBag(N_ATOM_CODES, hidden, mode="sum")
        self.bond_embeddings = nn.ModuleList(
            nn.EmbeddingBag(N_BOND_CODES, hidden, mode="sum") for _ in range(layers)
        )
        self.convs = nn.ModuleList(
            GINEConv(
                nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)), train_eps=True
            )
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.head = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, graphs: GraphBatch) -> torch.Tensor:
        """Predicted standardised label per graph, shape [num_graphs]."""
        x = self.atom_embedding(graphs.atoms)
        for bond_embedding, conv, norm in zip(self.bond_embeddings, self.convs, self.norms):
            edge_attr = bond_embedding(graphs.bonds)
            x = x + torch.relu(norm(conv(x, graphs.edge_index, edge_attr)))
        pooled = torch.cat(
            [
                global_add_pool(x, graphs.batch, size=graphs.num_graphs) / 10.0,  # keep sums at unit scale
                global_mean_pool(x, graphs.batch, size=graphs.num_graphs),
            ],
            dim=1,
        )
        return self.head(pooled).squeeze(-1)


class ForestRegressor(nn.Module):
    """A fitted random forest stored as flat node tensors, evaluated by vectorised tree traversal.

    sklearn's forest is converted once after fitting so the artefact holds only tensors (loadable with
    ``weights_only=True``, a few MB) and prediction needs no pickled estimator. All trees' nodes share
    one flat array; a leaf points to itself and sends every sample left (threshold +inf), so a fixed
    number of steps walks every sample of every tree to its leaf.
    """

    def __init__(self, feature: torch.Tensor, threshold: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                 value: torch.Tensor, roots: torch.Tensor, depth: int) -> None:  # fmt: skip
        super().__init__()
        self.register_buffer("feature", feature.to(torch.int16))
        self.register_buffer("threshold", threshold.to(torch.float32))
        self.register_buffer("left", left.to(torch.int32))
        self.register_buffer("right", right.to(torch.int32))
        self.register_buffer("value", value.to(torch.float32))
        self.register_buffer("roots", roots.to(torch.int64))
        self.register_buffer("depth", torch.tensor(int(depth)))

    @classmethod
    def from_sklearn(cls, forest) -> ForestRegressor:
        """Convert a fitted ``sklearn.ensemble.RandomForestRegressor`` (single output)."""
        parts, roots, offset, depth = [], [], 0, 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            n = tree.node_count
            ids = np.arange(n) + offset
            leaf = tree.children_left < 0
            parts.append(
                (
                    np.where(leaf, 0, tree.feature),
                    np.where(leaf, np.inf, tree.threshold),
                    np.where(leaf, ids, tree.children_left + offset),
                    np.where(leaf, ids, tree.children_right + offset),
                    tree.value[:, 0, 0],
                )
            )
            roots.append(offset)
            offset += n
            depth = max(depth, tree.max_depth)
        cat = [torch.from_numpy(np.concatenate(column)) for column in zip(*parts)]
        return cls(*cat, roots=torch.tensor(roots), depth=depth)

    @classmethod
    def from_state_dict(cls, state: dict) -> ForestRegressor:
        """Rebuild from a saved state dict (the tensor shapes come from the state itself)."""
        keys = ("feature", "threshold", "left", "right", "value", "roots")
        return cls(*(state[k] for k in keys), depth=int(state["depth"]))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        """NumPy views for traversal, built once: feature, threshold, children [2 * nodes] (right,
        left), value, roots. The buffers never change after construction (a forest is not trained
        by gradient), so the cache stays valid."""
        if getattr(self, "_cache", None) is None:
            children = torch.stack([self.right, self.left], dim=1).numpy().astype(np.int64).ravel()
            self._cache = (
                self.feature.numpy().astype(np.int64),
                self.threshold.numpy(),
                children,
                self.value.numpy(),
                self.roots.numpy(),
            )
        return self._cache

    def forward(self, fingerprints: torch.Tensor) -> torch.Tensor:
        """Per-tree predictions, shape [rows, trees].

        Walks all (row, tree) pairs down together in NumPy, eight levels at a time, and retires the
        pairs that reached a leaf, so the cost follows the actual path lengths, not the deepest tree.
        """
        x = np.ascontiguousarray(fingerprints.numpy(), dtype=np.float32)
        n_rows, n_features = x.shape
        x = x.ravel()
        feature, threshold, children, value, roots = self._arrays()
        node = np.tile(roots, n_rows)
        base = np.repeat(np.arange(n_rows, dtype=np.int64) * n_features, len(roots))
        pair = np.arange(node.size)
        out = np.empty(node.size, dtype=np.float32)
        while pair.size:
            for _ in range(8):
                go_left = x[base + feature[node]] <= threshold[node]
                node = children[2 * node + go_left]
            leaf = children[2 * node] == node
            out[pair[leaf]] = value[node[leaf]]
            pair, node, base = pair[~leaf], node[~leaf], base[~leaf]
        return torch.from_numpy(out.reshape(n_rows, len(roots)))


def fit_forest(x: np.ndarray, y: np.ndarray, hp: dict, seed: int, on_progress=None) -> ForestRegressor:
    """Fit sklearn's random forest in chunks of trees (so progress can be shown) and convert it."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(
        n_estimators=0,
        max_features=hp["max_features"],
        min_samples_leaf=hp["min_samples_leaf"],
        random_state=seed,
        warm_start=True,
        n_jobs=1,
    )
    while forest.n_estimators < hp["trees"]:
        forest.n_estimators = min(forest.n_estimators + 10, hp["trees"])
        forest.fit(x, y)
        if on_progress is not None:
            on_progress(forest.n_estimators)
    return ForestRegressor.from_sklearn(forest)


def build_network(family: str, hyperparameters: dict, state: dict | None = None) -> nn.Module:
    """A network of a family: fresh from its hyperparameters, or rebuilt from a saved state dict."""
    if family == "gnn":
        net = GraphRegressor(hyperparameters["hidden"], hyperparameters["layers"], hyperparameters["dropout"])
        if state is not None:
            net.load_state_dict(state)
        return net
    if family == "fp":
        if state is None:
            raise ValueError("an fp (random forest) model is built by fit_forest, not from hyperparameters")
        return ForestRegressor.from_state_dict(state)
    raise ValueError(f"model family must be one of {', '.join(FAMILIES)}; got {family!r}")
