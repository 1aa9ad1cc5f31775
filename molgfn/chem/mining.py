"""Mine a fragment vocabulary from molecules by BRICS decomposition.

Every molecule is cut at all of its BRICS bonds at once (RDKit ``BRICS.BreakBRICSBonds``, Degen et al. 2008),
which yields the leaf fragments of a full BRICS decomposition. Dummy-atom labels and stereochemistry are
dropped, each fragment is counted once per molecule, fragments outside the size bounds are discarded and
the most frequent ones are kept (ties broken by SMILES, so the result is deterministic). The header of the
written file records the command that reproduces it.
"""

from __future__ import annotations

import csv
import shlex
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

from rdkit import Chem
from rdkit.Chem import BRICS
from tqdm import tqdm

from molgfn.chem.vocab import HEADER, Vocabulary, make_fragment
from molgfn.errors import MolgfnError

SMILES_COLUMNS = ("smiles", "canonical_smiles", "smiles_string", "ligand smiles", "mol", "molecule")
MOLECULE_SUFFIXES = (".csv", ".tsv", ".smi", ".txt", ".sdf")


@dataclass
class MiningReport:
    files: list[str]
    molecules: int
    invalid: int
    fragments_seen: int
    kept: int


def _molecule_files(inputs: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MOLECULE_SUFFIXES)
            if not found:
                raise MolgfnError(
                    f"{path}: no molecule files ({', '.join(MOLECULE_SUFFIXES)}) in this directory"
                )
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise MolgfnError(f"{path}: molecule file not found")
    return files


def read_smiles(path: Path) -> list[tuple[int, str]]:
    """``(line or record number, SMILES)`` pairs from a CSV/TSV (a SMILES column), SMI or SDF file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".sdf":
            out = []
            for i, mol in enumerate(Chem.SDMolSupplier(str(path)), start=1):
                if mol is not None:
                    out.append((i, Chem.MolToSmiles(mol)))
            if not out:
                raise MolgfnError(f"{path}: no readable molecule in this SDF file")
            return out
        text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except UnicodeDecodeError:
        raise MolgfnError(f"{path}: not a text molecule file (cannot decode as UTF-8)") from None
    except OSError as exc:
        raise MolgfnError(f"{path}: cannot read ({exc.strerror})") from None
    lines = text.splitlines()
    if suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise MolgfnError(f"{path}: empty file") from None
        lowered = [h.strip().lower() for h in header]
        col = next((lowered.index(c) for c in SMILES_COLUMNS if c in lowered), None)
        if col is None:
            raise MolgfnError(f"{path}:1: no SMILES column; columns found: {', '.join(header)}")
        out = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) <= col:
                raise MolgfnError(
                    f"{path}:{lineno}: row has {len(row)} fields, expected a SMILES in field {col + 1}"
                )
            out.append((lineno, row[col].strip()))
        return out
    return [
        (i, line.split()[0])
        for i, line in enumerate(lines, start=1)
        if line.strip() and not line.startswith("#")
    ]


def brics_fragments(smiles: str) -> set[str] | None:
    """Canonical SMILES (plain ``*`` stems, no stereo) of the BRICS leaf fragments; None if unparsable."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:  # RDKit parses '' (an empty CSV cell) as an empty molecule
        return None
    broken = BRICS.BreakBRICSBonds(mol)
    out = set()
    for frag in Chem.GetMolFrags(broken, asMols=True, sanitizeFrags=False):
        for atom in frag.GetAtoms():
            if atom.GetAtomicNum() == 0:
                atom.SetIsotope(0)
        Chem.RemoveStereochemistry(frag)
        out.add(Chem.MolToSmiles(frag))
    return out


def mine_vocabulary(
    inputs: list[str | Path],
    top: int = 100,
    max_atoms: int = 12,
    max_stems: int = 3,
    min_atoms: int = 1,
    jobs: int = 1,
    command: str | None = None,
    progress: bool = False,
) -> tuple[Vocabulary, MiningReport]:
    """Mine the ``top`` most frequent BRICS fragments with 1..``max_stems`` stems and bounded size."""
    if top < 1 or max_atoms < 1 or max_stems < 1 or min_atoms < 1:
        raise MolgfnError("--top, --max-atoms, --max-stems and --min-atoms must be positive")
    files = _molecule_files(inputs)
    molecules: dict[str, None] = {}
    for path in files:
        for _, smi in read_smiles(path):
            molecules.setdefault(smi, None)
    unique = list(molecules)
    bar = tqdm(total=len(unique), desc="BRICS", unit="mol", disable=not progress, file=sys.stderr)
    if jobs > 1:
        with Pool(jobs) as pool:
            decomposed = []
            for frags in pool.imap(brics_fragments, unique, chunksize=256):
                decomposed.append(frags)
                bar.update()
    else:
        decomposed = []
        for smi in unique:
            decomposed.append(brics_fragments(smi))
            bar.update()
    bar.close()
    counts: Counter[str] = Counter()
    invalid = 0
    for frags in decomposed:
        if frags is None:
            invalid += 1
        else:
            counts.update(frags)
    candidates = []
    for smi, n in counts.items():
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            continue
        dummies = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
        atoms = mol.GetNumAtoms() - len(dummies)
        # BRICS also cuts C=C bonds (its rule 7); a stem must be a single bond
        single = all(b.GetBondType() == Chem.BondType.SINGLE for a in dummies for b in a.GetBonds())
        if single and 1 <= len(dummies) <= max_stems and min_atoms <= atoms <= max_atoms:
            candidates.append((-n, smi))
    candidates.sort()
    kept = candidates[:top]
    if not kept:
        raise MolgfnError(
            f"{', '.join(str(p) for p in files)}: no fragment with 1..{max_stems} stems and {min_atoms}..{max_atoms} "
            f"heavy atoms in {len(unique)} unique molecules ({invalid} unparsable)"
        )
    fragments = [make_fragment(smi, name=f"count={-n}") for n, smi in kept]
    header = [
        HEADER,
        f"# command: {command or 'molgfn fragments mine ' + ' '.join(shlex.quote(str(p)) for p in inputs)}",
        "# method: RDKit BRICS.BreakBRICSBonds on every unique input SMILES; dummy labels and stereo dropped;",
        "#   fragments cut at a double bond (BRICS rule 7) are skipped;",
        f"#   fragments with 1..{max_stems} stems and {min_atoms}..{max_atoms} heavy atoms, counted once per molecule;",
        f"#   the {top} most frequent kept (ties by SMILES).",
        f"# source: {len(files)} files, {len(unique)} unique molecules ({invalid} unparsable), "
        f"{len(counts)} distinct fragments, {len(fragments)} kept",
        "# columns: fragment SMILES (stems as *), number of molecules containing it",
    ]
    report = MiningReport([str(p) for p in files], len(unique), invalid, len(counts), len(fragments))
    return Vocabulary(fragments, source="<mined>", header=header), report
