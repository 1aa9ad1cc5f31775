"""Molecule pictures (RDKit SVG, drawn server-side) and SMARTS substructure search, for the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D

from molgfn.errors import MolgfnError


@lru_cache(maxsize=512)
def compile_smarts(smarts: str) -> Chem.Mol:
    """The RDKit query of a SMARTS pattern; MolgfnError with a readable message if it is invalid."""
    text = (smarts or "").strip()
    if not text:
        raise MolgfnError("SMARTS: empty pattern")
    block = rdBase.BlockLogs()
    query = Chem.MolFromSmarts(text)
    del block
    if query is None:
        raise MolgfnError(f"SMARTS {text!r}: not a valid SMARTS pattern")
    return query


@lru_cache(maxsize=100_000)
def _parse(smiles: str) -> Chem.Mol | None:
    block = rdBase.BlockLogs()
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    del block
    return mol


def substructure_mask(smiles: Sequence[str], smarts: str) -> np.ndarray:
    """Which molecules contain the SMARTS pattern (invalid SMILES never match)."""
    query = compile_smarts(smarts)
    out = np.zeros(len(smiles), dtype=bool)
    for i, s in enumerate(smiles):
        mol = _parse(s)
        out[i] = mol is not None and mol.HasSubstructMatch(query)
    return out


@lru_cache(maxsize=4096)
def mol_svg(smiles: str, width: int = 220, height: int = 160, highlight_smarts: str | None = None) -> str:
    """An SVG picture of a molecule (2D coordinates by RDKit), with the atoms and bonds of every match of
    ``highlight_smarts`` highlighted; an unparsable SMILES gives a small 'invalid' picture. Cached."""
    mol = _parse(smiles)
    if mol is None:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<text x="10" y="{height // 2}" font-size="12">invalid SMILES</text></svg>'
        )
    mol = Chem.Mol(mol)
    rdDepictor.Compute2DCoords(mol)
    atoms: list[int] = []
    bonds: list[int] = []
    if highlight_smarts:
        query = compile_smarts(highlight_smarts)
        for match in mol.GetSubstructMatches(query):
            atoms.extend(match)
            for bond in query.GetBonds():
                b = mol.GetBondBetweenAtoms(match[bond.GetBeginAtomIdx()], match[bond.GetEndAtomIdx()])
                if b is not None:
                    bonds.append(b.GetIdx())
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    options = drawer.drawOptions()
    options.clearBackground = False
    options.addStereoAnnotation = True
    drawer.DrawMolecule(mol, highlightAtoms=sorted(set(atoms)), highlightBonds=sorted(set(bonds)))
    drawer.FinishDrawing()
    svg = drawer.GetDrawingText()
    return svg[svg.find("<svg") :]  # drop the XML declaration: the SVG is inlined in HTML
