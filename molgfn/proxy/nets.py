"""The two proxy model families, as torch modules that map features to one standardised label.

- ``gnn``: a GINE message-passing network (Hu et al. 2020, "Strategies for Pre-training Graph Neural
  Networks") over atom graphs, with residual connections, sum + mean pooling and an MLP head.
- ``fp``: an MLP on log-scaled Morgan count fingerprints, the strong classical baseline on
  bioactivity sets (van Tilborg et al. 2022 found fingerprint models hard to beat). An MLP rather than
  a random forest keeps the saved artefact to a few MB and loadable as plain tensors.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GINEConv, global_add_pool, global_mean_pool

from molgfn.proxy.featurize import MORGAN_SIZE, N_ATOM_CODES, N_BOND_CODES, GraphBatch

FAMILIES = ("gnn", "fp")

DEFAULT_HYPERPARAMETERS: dict[str, dict] = {
    "gnn": {"hidden": 64, "layers": 3, "dropout": 0.1, "lr": 1e-3, "weight_decay": 1e-5, "batch_size": 64,
            "max_epochs": 60, "patience": 12},
    "fp": {"hidden": 256, "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-5, "batch_size": 64,
           "max_epochs": 60, "patience": 10},
}  # fmt: skip


class GraphRegressor(nn.Module):
    """GINE network: atom-code embeddings, ``layers`` residual GINE blocks, sum+mean pooling, MLP head."""

    def __init__(self, hidden: int = 64, layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.atom_embedding = nn.Embedding(N_ATOM_CODES, hidden)
        self.bond_embeddings = nn.ModuleList(nn.Embedding(N_BOND_CODES, hidden) for _ in range(layers))
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)), train_eps=True)
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, graphs: GraphBatch) -> torch.Tensor:
        """Predicted standardised label per graph, shape [num_graphs]."""
        x = self.atom_embedding(graphs.atoms).sum(dim=1)
        for bond_embedding, conv, norm in zip(self.bond_embeddings, self.convs, self.norms):
            edge_attr = bond_embedding(graphs.bonds).sum(dim=1)
            x = x + self.dropout(torch.relu(norm(conv(x, graphs.edge_index, edge_attr))))
        pooled = torch.cat(
            [
                global_add_pool(x, graphs.batch, size=graphs.num_graphs) / 10.0,  # keep sums at unit scale
                global_mean_pool(x, graphs.batch, size=graphs.num_graphs),
            ],
            dim=1,
        )
        return self.head(pooled).squeeze(-1)


class FingerprintRegressor(nn.Module):
    """MLP on log1p Morgan counts: 2048 -> hidden -> 1."""

    def __init__(self, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout / 2), nn.Linear(MORGAN_SIZE, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, fingerprints: torch.Tensor) -> torch.Tensor:
        """Predicted standardised label per row, shape [rows]."""
        return self.net(fingerprints).squeeze(-1)


def build_network(family: str, hyperparameters: dict) -> nn.Module:
    """A fresh network of a family from its hyperparameters (architecture keys only are used)."""
    if family == "gnn":
        return GraphRegressor(hyperparameters["hidden"], hyperparameters["layers"], hyperparameters["dropout"])
    if family == "fp":
        return FingerprintRegressor(hyperparameters["hidden"], hyperparameters["dropout"])
    raise ValueError(f"model family must be one of {', '.join(FAMILIES)}; got {family!r}")
