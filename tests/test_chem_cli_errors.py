"""Bad input to ``molgfn fragments check|mine`` and ``molgfn demo``: exit status 2 and one clear line on
stderr that names the file (and the line where there is one), never a traceback."""

from __future__ import annotations

import pytest

from molgfn.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single user-facing error line (mining also draws a progress bar on stderr)."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("molgfn: error: ")]
    assert len(errors) == 1, err
    return errors[0]


def write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


VOCAB_HEAD = "# molgfn-vocabulary 1\n[*]C   methyl\n"


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("[*]O[*]\n[*]c1ccc   broken ring\n", 4, ["cannot parse", "[*]c1ccc"]),
        ("\n\nCCO   ethanol\n", 5, ["has no stems", "CCO"]),
        ("[*]O[*]\nC[*]  methyl again\n", 4, ["duplicate", "C[*]", "line 2"]),
        ("[*]=O\n", 3, ["single bond"]),
        ("[*]C.[*]N\n", 3, ["not connected"]),
    ],
    ids=["unparsable", "no-stems", "duplicate", "double-bond-stem", "disconnected"],
)
@pytest.mark.parametrize("command", [("fragments", "check"), ("demo", "--vocab")], ids=["check", "demo"])
def test_broken_vocabulary_file(tmp_path, capsys, command, body, line, words):
    path = write(tmp_path / "my vocab.txt", VOCAB_HEAD + body)
    code, out, err = run(capsys, *command, path)
    assert code == 2 and out == ""
    message = one_error_line(err)
    assert f"{path}:{line}: " in message
    for w in words:
        assert w in message


def test_missing_vocabulary_file(tmp_path, capsys):
    code, _, err = run(capsys, "fragments", "check", tmp_path / "nope.txt")
    assert code == 2
    message = one_error_line(err)
    assert str(tmp_path / "nope.txt") in message and "not found" in message
    assert "default, tiny" in message  # says which names are shipped


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"\xff\xfe\x00\x81 not text", ["cannot read"]), ("# only comments\n\n", ["no fragments"])],
    ids=["binary", "empty"],
)
def test_unreadable_or_empty_vocabulary_file(tmp_path, capsys, content, words):
    path = write(tmp_path / "v.txt", content)
    code, _, err = run(capsys, "fragments", "check", path)
    assert code == 2
    message = one_error_line(err)
    assert str(path) in message and all(w in message for w in words)


def test_check_summarises_a_good_file(tmp_path, capsys):
    path = write(
        tmp_path / "v.txt", VOCAB_HEAD + "[*]C#N  nitrile  # comment\n[*]N([*])[*]\n[*]c1ccc([*])cc1\n"
    )
    code, out, err = run(capsys, "fragments", "check", path)
    assert code == 0 and err == ""
    assert f"{path}: 4 fragments, 7 stems (4 up to symmetry)" in out
    assert "2 fragments with 1 stem\n" in out and "1 fragments with 2 stems" in out
    assert "2 fragments with equivalent stems" in out


# -- molgfn fragments mine -------------------------------------------------------------------------------


def test_mine_missing_molecule_file(tmp_path, capsys):
    code, _, err = run(capsys, "fragments", "mine", tmp_path / "absent.csv")
    assert code == 2
    message = one_error_line(err)
    assert str(tmp_path / "absent.csv") in message and "not found" in message


@pytest.mark.parametrize("suffix", [".csv", ".smi", ".tsv"])
def test_mine_binary_molecule_file(tmp_path, capsys, suffix):
    path = write(tmp_path / f"mols{suffix}", bytes(range(128, 256)) * 4)
    code, _, err = run(capsys, "fragments", "mine", path)
    assert code == 2
    message = one_error_line(err)
    assert str(path) in message and "not a text molecule file" in message


def test_mine_csv_without_a_smiles_column_lists_the_columns(tmp_path, capsys):
    path = write(tmp_path / "assay.csv", "compound_id,structure,pIC50\nX1,CCO,5.0\n")
    code, _, err = run(capsys, "fragments", "mine", path)
    assert code == 2
    message = one_error_line(err)
    assert f"{path}:1: " in message and "no SMILES column" in message
    assert "compound_id, structure, pIC50" in message


def test_mine_csv_row_too_short_names_the_line(tmp_path, capsys):
    path = write(tmp_path / "m.csv", "name,smiles\na,CCOc1ccccc1\n\nb\n")
    code, _, err = run(capsys, "fragments", "mine", path)
    assert code == 2
    assert f"{path}:4: " in one_error_line(err)


def test_mine_directory_without_molecule_files(tmp_path, capsys):
    write(tmp_path / "notes.md", "nothing here")
    code, _, err = run(capsys, "fragments", "mine", tmp_path)
    assert code == 2
    message = one_error_line(err)
    assert str(tmp_path) in message and "no molecule files" in message


def test_mine_unreadable_sdf(tmp_path, capsys):
    path = write(tmp_path / "m.sdf", "this is not an SD file\n")
    code, _, err = run(capsys, "fragments", "mine", path)
    assert code == 2
    assert str(path) in one_error_line(err)


def test_mine_nothing_usable_names_the_input(tmp_path, capsys):
    # molecules without BRICS bonds (and an unparsable one) yield no fragment with a stem
    path = write(tmp_path / "m.smi", "c1ccccc1\nClc1ccccc1\nnot_a_smiles\n")
    code, out, err = run(capsys, "fragments", "mine", path)
    assert code == 2 and out == ""
    message = one_error_line(err)
    assert str(path) in message and "no fragment" in message


def test_mine_refuses_to_overwrite_without_force(tmp_path, capsys):
    mols = write(tmp_path / "m.smi", "CCOc1ccccc1\n")
    out_file = write(tmp_path / "vocab.txt", "keep me\n")
    code, _, err = run(capsys, "fragments", "mine", mols, "--out", out_file)
    assert code == 2
    message = one_error_line(err)
    assert str(out_file) in message and "--force" in message
    assert out_file.read_text() == "keep me\n"
    code, _, err = run(capsys, "fragments", "mine", mols, "--out", out_file, "--force")
    assert code == 0
    assert out_file.read_text().startswith("# molgfn-vocabulary 1\n")


def test_mine_out_that_cannot_be_written(tmp_path, capsys):
    mols = write(tmp_path / "m.smi", "CCOc1ccccc1\n")
    (tmp_path / "adir").mkdir()
    code, _, err = run(capsys, "fragments", "mine", mols, "--out", tmp_path / "adir", "--force")
    assert code == 2
    assert str(tmp_path / "adir") in one_error_line(err)


@pytest.mark.parametrize(
    "argv", [("--top", "0"), ("--max-atoms", "0"), ("--max-stems", "0"), ("--min-atoms", "0")]
)
def test_mine_rejects_non_positive_bounds(tmp_path, capsys, argv):
    mols = write(tmp_path / "m.smi", "CCOc1ccccc1\n")
    code, _, err = run(capsys, "fragments", "mine", mols, *argv)
    assert code == 2
    assert argv[0] in one_error_line(err)


def test_files_saved_with_a_byte_order_mark_are_read(tmp_path, capsys):
    # spreadsheet programs and Windows editors often write UTF-8 with a BOM
    vocab = write(tmp_path / "v.txt", "\ufeff# molgfn-vocabulary 1\n[*]C\n[*]O[*]\n".encode())
    code, out, err = run(capsys, "fragments", "check", vocab)
    assert code == 0, err
    assert "2 fragments" in out
    mols = write(tmp_path / "m.csv", "\ufeffSMILES,pK\nCCOc1ccccc1,5\n".encode())
    code, out, err = run(capsys, "fragments", "mine", mols)
    assert code == 0, err
    assert "*c1ccccc1" in out


def test_demo_rejects_a_size_bound_below_one(capsys):
    code, _, err = run(capsys, "demo", "--vocab", "tiny", "--max-frags", "0")
    assert code == 2
    assert "--max-frags" in one_error_line(err)


def test_demo_runs_on_the_tiny_vocabulary(capsys):
    code, out, err = run(capsys, "demo", "--vocab", "tiny", "--max-frags", "3", "--n", "4", "--seed", "1")
    assert code == 0 and err == ""
    shown = [line for line in out.splitlines() if " <- " in line]
    assert len(shown) == 4
    for line in shown:  # each shown molecule is made of at most 3 tiny fragments
        assert 1 <= len(line.split(" <- ")[1].split(" + ")) <= 3
