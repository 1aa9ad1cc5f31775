"""``molgfn fragments mine``: hand-checked counts on a small file, determinism, and the shipped default
vocabulary reproduced byte for byte from the shipped molecules."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from rdkit import Chem

from molgfn.chem.mining import brics_fragments, mine_vocabulary
from molgfn.chem.vocab import SHIPPED, load_vocabulary, parse_vocabulary
from molgfn.cli import main

REPO = Path(__file__).resolve().parents[1]

# BRICS by hand (Degen et al. 2008): it cuts C(aliphatic)-O, O-c(aromatic), C(=O)-N, N-c(aromatic) and
# C-N(amine) bonds, but not O-CH3 (a methyl carbon is not a BRICS L4 atom), C-Cl, or anything in a ring.
HAND = {
    "CCOc1ccccc1": {"*CC", "*O*", "*c1ccccc1"},  # phenetole
    "COc1ccc(OC)cc1": {"*OC", "*c1ccc(*)cc1"},  # 1,4-dimethoxybenzene: *OC twice, counted once
    "CC(=O)Nc1ccccc1": {"*C(C)=O", "*N*", "*c1ccccc1"},  # acetanilide
    "c1ccccc1OCCOc1ccccc1": {"*CC*", "*O*", "*c1ccccc1"},  # 1,2-diphenoxyethane
    "CCN(CC)CC": {"*CC", "*N(*)*"},  # triethylamine
    "Clc1ccccc1": {"Clc1ccccc1"},  # no BRICS bond: a fragment without stems, never kept
}
SMI_FILE = (
    "# a comment line\n"
    "CCOc1ccccc1 phenetole\n"
    "COc1ccc(OC)cc1\n"
    "\n"
    "CC(=O)Nc1ccccc1 acetanilide\n"
    "c1ccccc1OCCOc1ccccc1\n"
    "CCN(CC)CC\n"
    "Clc1ccccc1\n"
    "CCOc1ccccc1 phenetole-again\n"  # duplicate molecule: counted once
    "C1CC( broken\n"  # unparsable
)
# fragment -> number of molecules containing it, from HAND
EXPECTED = {
    "*c1ccccc1": 3,
    "*CC": 2,
    "*O*": 2,
    "*C(C)=O": 1,
    "*CC*": 1,
    "*N(*)*": 1,
    "*N*": 1,
    "*OC": 1,
    "*c1ccc(*)cc1": 1,
}


def canonical(smiles: str) -> str:
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


def counts(vocab) -> dict[str, int]:
    return {f.smiles: int(f.name.removeprefix("count=")) for f in vocab.fragments}


@pytest.mark.parametrize(("smiles", "fragments"), HAND.items())
def test_brics_fragments_by_hand(smiles, fragments):
    assert brics_fragments(smiles) == {canonical(f) for f in fragments}


def test_brics_fragments_of_unparsable_or_empty_smiles():
    assert brics_fragments("C1CC(") is None
    assert brics_fragments("") is None


def test_mine_small_file_gives_the_hand_counted_fragments(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text(SMI_FILE)
    vocab, report = mine_vocabulary([path])
    assert counts(vocab) == {canonical(k): v for k, v in EXPECTED.items()}
    # most frequent first, ties broken by SMILES
    assert [f.smiles for f in vocab.fragments[:3]] == ["*c1ccccc1", "*CC", "*O*"]
    assert (report.molecules, report.invalid, report.fragments_seen, report.kept) == (7, 1, 10, 9)
    header = "\n".join(vocab.header)
    assert "1 files, 7 unique molecules (1 unparsable), 10 distinct fragments, 9 kept" in header


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"top": 2}, {"*c1ccccc1": 3, "*CC": 2}),
        ({"max_stems": 1}, {"*c1ccccc1": 3, "*CC": 2, "*C(C)=O": 1, "*OC": 1}),
        ({"min_atoms": 2, "max_atoms": 3}, {"*CC": 2, "*C(C)=O": 1, "*CC*": 1, "*OC": 1}),
    ],
)
def test_mine_bounds(tmp_path, options, expected):
    path = tmp_path / "mols.smi"
    path.write_text(SMI_FILE)
    vocab, _ = mine_vocabulary([path], **options)
    assert counts(vocab) == {canonical(k): v for k, v in expected.items()}


def test_mine_is_deterministic_and_independent_of_jobs_and_file_split(tmp_path, capsys):
    lines = [line for line in SMI_FILE.splitlines() if line and not line.startswith("#")]
    whole = tmp_path / "all.smi"
    whole.write_text(SMI_FILE)
    texts = []
    for jobs in ("1", "1", "2"):
        assert main(["fragments", "mine", str(whole), "--jobs", jobs]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] == texts[2]
    assert parse_vocabulary(texts[0]).fragments == mine_vocabulary([whole])[0].fragments
    # the same molecules split over a CSV and an SMI file in one directory give the same counts
    folder = tmp_path / "split"
    folder.mkdir()
    (folder / "a.csv").write_text(
        "id,SMILES,pK\n" + "".join(f"m{i},{line.split()[0]},5\n" for i, line in enumerate(lines[:4]))
    )
    (folder / "b.smi").write_text("\n".join(lines[4:]) + "\n")
    (folder / "readme.md").write_text("ignored: not a molecule file\n")
    vocab, report = mine_vocabulary([folder])
    assert counts(vocab) == {canonical(k): v for k, v in EXPECTED.items()}
    assert [Path(f).name for f in report.files] == ["a.csv", "b.smi"]


def test_mine_reads_sdf(tmp_path):
    path = tmp_path / "m.sdf"
    with Chem.SDWriter(str(path)) as writer:
        for smiles in HAND:
            writer.write(Chem.MolFromSmiles(smiles))
    vocab, report = mine_vocabulary([path])
    assert report.molecules == len(HAND) and report.invalid == 0
    assert counts(vocab) == {canonical(k): v for k, v in EXPECTED.items()}


def test_empty_smiles_cells_count_as_unparsable(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('smiles,x\nCCOc1ccccc1,1\n"",2\n,3\n')
    _, report = mine_vocabulary([path])
    assert (report.molecules, report.invalid) == (2, 1)  # "" twice is one unique entry, and unparsable


@pytest.mark.slow  # ~70 s of CPU (BRICS on 35,633 molecules), on two workers
def test_mine_reproduces_the_shipped_default_vocabulary(tmp_path, capsys, monkeypatch):
    """The acceptance check: the command in the header, run from the repository root, rebuilds the file."""
    shipped = SHIPPED["default"]
    command = next(line for line in shipped.read_text().splitlines() if line.startswith("# command: "))
    argv = shlex.split(command.removeprefix("# command: "))
    assert argv[:3] == ["molgfn", "fragments", "mine"]
    out = tmp_path / "x.txt"
    monkeypatch.chdir(REPO)
    assert main([*argv[1:], "--jobs", "2", "--out", str(out)]) == 0
    assert out.read_bytes() == shipped.read_bytes()
    assert len(load_vocabulary(out)) == 100
