"""The trained proxy: an ensemble of one model family, with its metadata and training data.

A proxy is saved as one ``torch.save`` file holding only plain Python types and tensors (state dicts),
so it loads with ``torch.load(weights_only=True)``: opening a proxy file never runs pickled code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from molgfn.errors import MolgfnError
from molgfn.proxy.featurize import collate_graphs, mol_to_graph, morgan_counts, parse_smiles
from molgfn.proxy.nets import FAMILIES, build_network

FORMAT = "molgfn-proxy"
FORMAT_VERSION = 1


def plain(value: object) -> object:
    """Convert metadata to plain Python types (what ``torch.load(weights_only=True)`` accepts)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.floating):
        return float(value)
    for kind in (bool, int, float, str):  # exact builtins: subclasses such as TorchVersion are not allowed
        if isinstance(value, kind):
            return kind(value)
    return value if value is None else str(value)


def featurize(family: str, mols: list) -> object:
    """Model input of a family for a list of parsed molecules."""
    if family == "gnn":
        return collate_graphs([mol_to_graph(m) for m in mols])
    return torch.from_numpy(morgan_counts(mols))


class Proxy:
    """An ensemble regressor from SMILES to an activity label (pK for concentration data).

    Attributes:
        family: ``"gnn"`` or ``"fp"``.
        hyperparameters: the family's hyperparameters used in training.
        metadata: data file, hash, columns, units, split, metrics of every family, date, version, counts.
        train_smiles: canonical standardised SMILES of every molecule in the assay table the proxy was
            trained from (all split parts; ``data_split`` says which part each was in).
        train_labels: their labels (mean over duplicates), same order.
        data_split: ``"train"``, ``"valid"`` or ``"test"`` for each molecule.
    """

    def __init__(
        self,
        family: str,
        hyperparameters: dict,
        members: list[nn.Module],
        label_mean: float,
        label_std: float,
        metadata: dict,
        train_smiles: list[str],
        train_labels: np.ndarray,
        data_split: list[str],
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
        if not members:
            raise ValueError("members must hold at least one network")
        self.family = family
        self.hyperparameters = dict(hyperparameters)
        self.members = [m.eval() for m in members]
        self.label_mean = float(label_mean)
        self.label_std = float(label_std)
        self.metadata = metadata
        self.train_smiles = list(train_smiles)
        self.train_labels = np.asarray(train_labels, dtype=float)
        self.data_split = list(data_split)

    @property
    def n_members(self) -> int:
        """Number of ensemble predictions averaged (GNN networks, or forest trees)."""
        return sum(int(m.roots.numel()) if hasattr(m, "roots") else 1 for m in self.members)

    def __repr__(self) -> str:
        return (
            f"Proxy(family={self.family!r}, members={self.n_members}, "
            f"target={self.metadata.get('data_file')!r}, molecules={len(self.train_smiles)})"
        )

    @torch.no_grad()
    def predict_members(
        self, smiles: list[str], batch_size: int = 1024, standardize: bool = True
    ) -> np.ndarray:
        """Per-member predictions, shape [members, len(smiles)]; NaN where a SMILES cannot be parsed.

        Members are the GNN ensemble's networks, or the random forest's trees.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        if isinstance(smiles, str):
            raise TypeError("smiles must be a list of SMILES strings, not one string")
        smiles = list(smiles)
        out = np.full((self.n_members, len(smiles)), np.nan)
        for start in range(0, len(smiles), batch_size):
            chunk = smiles[start : start + batch_size]
            mols = [parse_smiles(s, standardize) for s in chunk]
            ok = [i for i, m in enumerate(mols) if m is not None and m.GetNumAtoms() > 0]
            if not ok:
                continue
            inputs = featurize(self.family, [mols[i] for i in ok])
            rows = np.asarray(ok) + start
            k = 0
            for member in self.members:
                pred = member(inputs).double()
                pred = pred.unsqueeze(1) if pred.ndim == 1 else pred  # [molecules, outputs]
                out[k : k + pred.shape[1], rows] = pred.T.numpy() * self.label_std + self.label_mean
                k += pred.shape[1]
        return out

    def predict(
        self, smiles: list[str], batch_size: int = 1024, standardize: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and spread (population std over members) for each SMILES.

        Unparsable SMILES give NaN in both. Deterministic: networks are in eval mode (no dropout, fixed
        batch-norm statistics); the same call gives the same numbers, also after save/load in another
        process. A GNN score can differ by ~1e-7 between batch compositions (float32 matrix products
        are blocked by batch size); forest scores do not depend on the batch at all.
        """
        members = self.predict_members(smiles, batch_size=batch_size, standardize=standardize)
        return members.mean(axis=0), members.std(axis=0)

    def to_dict(self) -> dict:
        """The artefact as plain types and tensors (what :meth:`save` writes)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "hyperparameters": self.hyperparameters,
            "members": [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self.members],
            "label_mean": self.label_mean,
            "label_std": self.label_std,
            "metadata": plain(self.metadata),
            "train_smiles": self.train_smiles,
            "train_labels": torch.tensor(self.train_labels, dtype=torch.float64),
            "data_split": self.data_split,
        }

    def save(self, path: str | Path) -> Path:
        """Write the proxy to one file (parent folders are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.to_dict(), path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Proxy:
        """Read a proxy saved by :meth:`save`; a missing or corrupt file raises MolgfnError naming it."""
        path = Path(path)
        if not path.is_file():
            raise MolgfnError(f"{path}: proxy file not found")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types on a damaged or foreign file
            raise MolgfnError(f"{path}: not a readable molgfn proxy file ({type(exc).__name__})") from exc
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise MolgfnError(f"{path}: not a molgfn proxy file (no '{FORMAT}' format tag)")
        if blob.get("format_version", 0) > FORMAT_VERSION:
            raise MolgfnError(
                f"{path}: proxy format version {blob['format_version']} is newer than this molgfn reads "
                f"({FORMAT_VERSION}); upgrade molgfn"
            )
        try:
            members = []
            for state in blob["members"]:
                members.append(build_network(blob["family"], blob["hyperparameters"], state))
            return cls(
                family=blob["family"],
                hyperparameters=blob["hyperparameters"],
                members=members,
                label_mean=blob["label_mean"],
                label_std=blob["label_std"],
                metadata=blob["metadata"],
                train_smiles=blob["train_smiles"],
                train_labels=blob["train_labels"].numpy(),
                data_split=blob["data_split"],
            )
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
            raise MolgfnError(f"{path}: corrupt molgfn proxy file ({type(exc).__name__}: {exc})") from exc
