"""Fragment vocabularies: fragments with attachment points ("stems") written as dummy atoms.

File format (plain text, UTF-8)::

    # molgfn-vocabulary 1
    # command: molgfn fragments mine data/targets --top 100
    # anything else after '#' is a comment; blank lines are ignored
    [*]c1ccccc1            phenyl         <- SMILES, then an optional name
    [*]C(=O)N[*]

Each dummy atom (``*``, any isotope or map label is ignored) is one stem; it must hang on a real atom by a
single bond. An attachment atom may carry several stems. Stems are numbered in the atom order of the
fragment's canonical SMILES, so a vocabulary means the same thing whatever way its SMILES were written.

Symmetry: :attr:`Fragment.stem_group` is the group of stem permutations induced by the fragment's graph
automorphisms (computed once with RDKit substructure matching). Stems in one orbit are equivalent:
attaching to either gives the same molecule. The environment and the exact enumeration use the whole
group, not only the orbits, because a fragment with three or more equivalent stems can have inequivalent
*pairs* of stems (ortho/meta/para).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from rdkit import Chem, RDLogger

from molgfn.errors import MolgfnError
from molgfn.resources import VOCABULARIES as SHIPPED
from molgfn.resources import resolve

RDLogger.DisableLog("rdApp.*")

HEADER = "# molgfn-vocabulary 1"
_MAP_TOKEN = re.compile(r"\[\*:(\d+)\]")
# Stand-in element for dummy atoms while matching automorphisms: a dummy atom in a query matches any atom.
_PLACEHOLDER_Z = 118


@dataclass(frozen=True)
class Fragment:
    """One vocabulary entry. ``smiles`` is canonical, with plain ``*`` stems numbered in atom order."""

    smiles: str
    name: str
    n_stems: int
    stem_group: tuple[tuple[int, ...], ...]  # permutations g of range(n_stems); g[i] = image of stem i
    stem_class: tuple[int, ...]  # orbit id of each stem (0-based, first occurrence order)
    template: str  # canonical SMILES with "{i}" in place of stem i, for assembly
    n_atoms: int  # heavy atoms, stems excluded

    @property
    def group_order(self) -> int:
        return len(self.stem_group)


def _stem_group(mol: Chem.Mol, dummies: list[int]) -> tuple[tuple[int, ...], ...]:
    probe = Chem.RWMol(mol)
    for idx in dummies:
        probe.GetAtomWithIdx(idx).SetAtomicNum(_PLACEHOLDER_Z)
        probe.GetAtomWithIdx(idx).SetIsotope(0)
    probe = probe.GetMol()
    probe.UpdatePropertyCache(strict=False)
    matches = probe.GetSubstructMatches(probe, uniquify=False, useChirality=False, maxMatches=1_000_000)
    # Substructure matching compares elements and bonds but not hydrogen counts, so it would map the [nH]
    # of an imidazole onto its other n; keep only matches that preserve each atom's hydrogens and charge.
    invariant = [(a.GetTotalNumHs(), a.GetFormalCharge()) for a in mol.GetAtoms()]
    matches = [m for m in matches if all(invariant[j] == invariant[i] for i, j in enumerate(m))]
    position = {atom: i for i, atom in enumerate(dummies)}
    perms = {tuple(position[match[d]] for d in dummies) for match in matches}
    return tuple(sorted(perms))


def _orbits(group: tuple[tuple[int, ...], ...], n: int) -> tuple[int, ...]:
    cls = [-1] * n
    next_id = 0
    for i in range(n):
        if cls[i] < 0:
            for g in group:
                cls[g[i]] = next_id
            next_id += 1
    return tuple(cls)


def make_fragment(smiles: str, name: str = "", where: str = "") -> Fragment:
    """Parse and validate one fragment SMILES; ``where`` (e.g. ``file:line``) prefixes error messages."""
    prefix = f"{where}: " if where else ""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise MolgfnError(f"{prefix}cannot parse fragment SMILES {smiles!r}")
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(0)  # a label, not chemistry, on any atom
        if atom.GetAtomicNum() == 0:
            atom.SetIsotope(0)
    Chem.RemoveStereochemistry(mol)
    canonical = Chem.MolToSmiles(mol)
    mol = Chem.MolFromSmiles(canonical)
    dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if not dummies:
        raise MolgfnError(f"{prefix}fragment {smiles!r} has no stems (write attachment points as [*])")
    if len(dummies) == mol.GetNumAtoms():
        raise MolgfnError(f"{prefix}fragment {smiles!r} has no real atoms")
    for idx in dummies:
        atom = mol.GetAtomWithIdx(idx)
        bonds = atom.GetBonds()
        if len(bonds) != 1 or bonds[0].GetBondType() != Chem.BondType.SINGLE:
            raise MolgfnError(f"{prefix}stem of {smiles!r} must hang on one atom by a single bond")
        if bonds[0].GetOtherAtom(atom).GetAtomicNum() == 0:
            raise MolgfnError(f"{prefix}fragment {smiles!r} joins two stems to each other")
    if len(Chem.GetMolFrags(mol)) != 1:
        raise MolgfnError(f"{prefix}fragment {smiles!r} is not connected")
    group = _stem_group(mol, dummies)
    tagged = Chem.Mol(mol)
    for i, idx in enumerate(dummies):
        tagged.GetAtomWithIdx(idx).SetAtomMapNum(i + 1)
    template = _MAP_TOKEN.sub(lambda m: "{" + str(int(m.group(1)) - 1) + "}", Chem.MolToSmiles(tagged))
    return Fragment(
        smiles=canonical,
        name=name,
        n_stems=len(dummies),
        stem_group=group,
        stem_class=_orbits(group, len(dummies)),
        template=template,
        n_atoms=mol.GetNumAtoms() - len(dummies),
    )


@dataclass
class Vocabulary:
    """An ordered list of fragments plus the arrays the batched environment needs."""

    fragments: list[Fragment]
    source: str = "<memory>"
    header: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.fragments:
            raise MolgfnError(f"{self.source}: the vocabulary holds no fragments")

    def __len__(self) -> int:
        return len(self.fragments)

    def __getitem__(self, i: int) -> Fragment:
        return self.fragments[i]

    @cached_property
    def max_stems(self) -> int:
        return max(f.n_stems for f in self.fragments)

    @cached_property
    def n_stems(self) -> np.ndarray:
        """Number of stems of each fragment, shape (F,)."""
        return np.array([f.n_stems for f in self.fragments], dtype=np.int64)

    @cached_property
    def stem_table(self) -> np.ndarray:
        """Every (fragment, stem) pair of the vocabulary, shape (T, 2): the targets of an ADD action."""
        return np.array(
            [(f, s) for f, frag in enumerate(self.fragments) for s in range(frag.n_stems)], dtype=np.int64
        )

    @cached_property
    def stem_offset(self) -> np.ndarray:
        """Index in :attr:`stem_table` of stem 0 of each fragment, shape (F,)."""
        return np.concatenate([[0], np.cumsum(self.n_stems)[:-1]]).astype(np.int64)

    @cached_property
    def stem_class_table(self) -> np.ndarray:
        """Global id of each (fragment, stem orbit), shape (F, max_stems), -1 where a fragment has no such stem.

        Networks embed stems by this id, so equivalent stems get equal features and outputs.
        """
        out = np.full((len(self), self.max_stems), -1, dtype=np.int64)
        next_id = 0
        for f, frag in enumerate(self.fragments):
            for s, c in enumerate(frag.stem_class):
                out[f, s] = next_id + c
            next_id += max(frag.stem_class) + 1
        return out

    @cached_property
    def n_stem_classes(self) -> int:
        return int(self.stem_class_table.max()) + 1

    def to_text(self) -> str:
        lines = list(self.header) or [HEADER]
        width = max(len(f.smiles) for f in self.fragments)
        for f in self.fragments:
            lines.append(f"{f.smiles:<{width}}  {f.name}".rstrip())
        return "\n".join(lines) + "\n"


def parse_vocabulary(text: str, source: str = "<text>") -> Vocabulary:
    """Parse vocabulary text; every error names ``source`` and the line number."""
    fragments: list[Fragment] = []
    header: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if not fragments:
                header.append(line)
            continue
        line = re.split(r"\s+#", line, maxsplit=1)[0]  # '#' is also SMILES' triple bond
        parts = line.split(None, 1)
        where = f"{source}:{lineno}"
        frag = make_fragment(parts[0], parts[1].strip() if len(parts) > 1 else "", where)
        if frag.smiles in seen:
            raise MolgfnError(f"{where}: duplicate fragment {parts[0]!r} (same as line {seen[frag.smiles]})")
        seen[frag.smiles] = lineno
        fragments.append(frag)
    return Vocabulary(fragments, source=source, header=header)


def load_vocabulary(path_or_name: str | Path) -> Vocabulary:
    """Load a vocabulary file, or a shipped one by name (``default``, ``tiny``)."""
    path = resolve(path_or_name, SHIPPED)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except FileNotFoundError:
        raise MolgfnError(
            f"{path}: vocabulary file not found (shipped vocabularies: {', '.join(SHIPPED)})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MolgfnError(f"{path}: cannot read vocabulary file ({exc})") from None
    return parse_vocabulary(text, source=str(path))


def vocabulary_from_smiles(smiles: list[str]) -> Vocabulary:
    """Build a vocabulary from a list of fragment SMILES (tests, notebooks)."""
    return parse_vocabulary("\n".join(smiles), source="<list>")
