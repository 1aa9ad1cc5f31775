"""Molecule featurisation for the proxy models: atom graphs for the GNN, Morgan counts for the MLP.

Speed matters here (the GFlowNet scores batches of hundreds of molecules per step), so features are
small integer codes gathered in one pass over the atoms, bonds come from RDKit's adjacency matrix in
one C++ call, and batches are collated with NumPy rather than torch-geometric's per-graph ``Batch``.
Each atom row holds one code per feature, already offset into a single shared embedding table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from molgfn.proxy.data import standardize_mol, uncharge_mol

# C N O F P S Cl Br I B Si Se; anything else -> "other"
ELEMENTS = [6, 7, 8, 9, 15, 16, 17, 35, 53, 5, 14, 34]
_ELEMENT_CODE = np.full(128, len(ELEMENTS), dtype=np.int64)
_ELEMENT_CODE[ELEMENTS] = np.arange(len(ELEMENTS))
_HYBRID_CODE = np.full(16, 5, dtype=np.int64)  # RDKit HybridizationType ints: SP=2 SP2=3 SP3=4 SP3D=5 SP3D2=6
_HYBRID_CODE[[2, 3, 4, 5, 6]] = np.arange(5)

# (name, number of codes) of each atom feature, in column order
ATOM_FEATURES = [
    ("element", len(ELEMENTS) + 1),
    ("degree", 7),  # 0..6+
    ("formal_charge", 5),  # -2..+2 (clipped)
    ("aromatic", 2),
    ("hybridization", 6),  # SP, SP2, SP3, SP3D, SP3D2, other
    ("total_hs", 5),  # 0..4+
    ("in_ring", 2),
]
BOND_FEATURES = [("bond_type", 4), ("in_ring", 2)]  # single, aromatic, double, triple
ATOM_OFFSETS = np.cumsum([0] + [n for _, n in ATOM_FEATURES[:-1]]).astype(np.int64)
BOND_OFFSETS = np.cumsum([0] + [n for _, n in BOND_FEATURES[:-1]]).astype(np.int64)
N_ATOM_CODES = int(sum(n for _, n in ATOM_FEATURES))
N_BOND_CODES = int(sum(n for _, n in BOND_FEATURES))

MORGAN_RADIUS = 2
MORGAN_SIZE = 2048
_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_SIZE)


def parse_smiles(smiles: str, standardize: bool = True) -> Chem.Mol | None:
    """Parse a SMILES for scoring; None if RDKit cannot read it.

    With ``standardize``, molecules are brought to the form the proxy was trained on: a SMILES with
    several fragments ('.') goes through the full standardiser (:func:`standardize_mol`), a charged one
    ('+' or '-') through the uncharger only, and the rest (single neutral fragments, e.g. everything
    the GFlowNet builds) skip both, which keeps scoring fast.
    """
    if not isinstance(smiles, str) or not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    if standardize and "." in smiles:
        mol = standardize_mol(mol)
    elif standardize and ("+" in smiles or "-" in smiles):
        mol = uncharge_mol(mol)
    return mol


@dataclass
class GraphArrays:
    """One molecule's graph: atom codes [N, 7], directed edges [2, E] and bond codes [E, 2]."""

    atoms: np.ndarray
    edge_index: np.ndarray
    bonds: np.ndarray


def mol_to_graph(mol: Chem.Mol) -> GraphArrays:
    """Integer-coded atom graph of a molecule (hydrogens implicit). Bonds appear in both directions."""
    # GetAtomWithIdx, not GetAtoms(): iterating RDKit's atom sequence recomputes its length per step
    n_atoms = mol.GetNumAtoms()
    atom = mol.GetAtomWithIdx
    raw = np.array(
        [
            (a.GetAtomicNum(), a.GetFormalCharge(), int(a.GetHybridization()), a.GetTotalNumHs())
            for a in map(atom, range(n_atoms))
        ],
        dtype=np.int64,
    ).reshape(-1, 4)
    adjacency = Chem.GetAdjacencyMatrix(mol, useBO=True)
    src, dst = np.nonzero(adjacency)
    order = adjacency[src, dst]
    rings = mol.GetRingInfo().AtomRings()
    ring_pairs = np.array([(r[k - 1], r[k]) for r in rings for k in range(len(r))], dtype=np.int64).reshape(
        -1, 2
    )
    ring_bond = np.zeros((n_atoms, n_atoms), dtype=bool)
    ring_bond[ring_pairs[:, 0], ring_pairs[:, 1]] = True
    ring_bond |= ring_bond.T
    in_ring_atom = ring_bond.any(axis=1)
    degree = np.count_nonzero(adjacency, axis=1)
    aromatic = (adjacency == 1.5).any(
        axis=1
    )  # after sanitisation, aromatic atoms are those in aromatic bonds

    atoms = np.empty((n_atoms, 7), dtype=np.int64)
    atoms[:, 0] = _ELEMENT_CODE[np.minimum(raw[:, 0], 127)]
    atoms[:, 1] = np.minimum(degree, 6)
    atoms[:, 2] = np.clip(raw[:, 1], -2, 2) + 2
    atoms[:, 3] = aromatic
    atoms[:, 4] = _HYBRID_CODE[np.minimum(raw[:, 2], 15)]
    atoms[:, 5] = np.minimum(raw[:, 3], 4)
    atoms[:, 6] = in_ring_atom
    atoms += ATOM_OFFSETS

    # bond order 1, 1.5, 2, 3 -> codes 0..3 (other orders, e.g. dative, count as single)
    bond_type = np.select([order == 1.5, order == 2, order == 3], [1, 2, 3], default=0)
    bonds = np.stack([bond_type, ring_bond[src, dst].astype(np.int64)], axis=1) + BOND_OFFSETS
    return GraphArrays(atoms, np.stack([src, dst]).astype(np.int64), bonds.astype(np.int64))


@dataclass
class GraphBatch:
    """Graphs collated into torch tensors for one forward pass."""

    atoms: torch.Tensor
    edge_index: torch.Tensor
    bonds: torch.Tensor
    batch: torch.Tensor
    num_graphs: int


def collate_graphs(graphs: list[GraphArrays]) -> GraphBatch:
    """Concatenate graphs, shifting edge indices, and record which graph each atom belongs to."""
    sizes = np.array([g.atoms.shape[0] for g in graphs], dtype=np.int64)
    shifts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    edge_index = np.concatenate([g.edge_index + s for g, s in zip(graphs, shifts)], axis=1)
    return GraphBatch(
        atoms=torch.from_numpy(np.concatenate([g.atoms for g in graphs])),
        edge_index=torch.from_numpy(edge_index),
        bonds=torch.from_numpy(np.concatenate([g.bonds for g in graphs]).reshape(-1, 2)),
        batch=torch.from_numpy(np.repeat(np.arange(len(graphs)), sizes)),
        num_graphs=len(graphs),
    )


def morgan_counts(mols: list[Chem.Mol]) -> np.ndarray:
    """Morgan radius-2, 2048-bit count fingerprints, log1p-scaled, as float32 [len(mols), 2048]."""
    out = np.zeros((len(mols), MORGAN_SIZE), dtype=np.float32)
    for i, mol in enumerate(mols):
        out[i] = _MORGAN.GetCountFingerprintAsNumPy(mol)
    return np.log1p(out, out=out)
