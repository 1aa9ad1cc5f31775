"""``molgfn proxy train|predict|info`` through the real entry point."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from molgfn.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assay_csv(tmp_path_factory) -> Path:
    """150 DRD3 molecules as a ';'-delimited, quoted table with a salt row and two bad rows."""
    data = pd.read_csv(REPO / "data/targets/CHEMBL214_Ki.csv").iloc[:150]
    lines = ['"ID";"Ligand SMILES";"Ki (nM)";"note"']
    lines += [f'"m{i}";"{s}";"{v}";"a; b"' for i, (s, v) in enumerate(zip(data["smiles"], data["value_nM"]))]
    lines += ['"bad1";"C1CC";"10";""', '"bad2";"CCO";"";""', '"salt";"CCCN.Cl";"100";""']
    path = tmp_path_factory.mktemp("assay") / "assay.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained_proxy(assay_csv, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("proxy") / "drd3.pt"
    argv = ["proxy", "train", str(assay_csv), "--label-col", "Ki (nM)", "--units", "nM", "--model", "fp"]
    argv += ["--out", str(out), "--quiet"]
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(argv) == 0
    return out, buffer.getvalue()


def test_train_prints_report_and_metrics_and_writes_dropped_rows(trained_proxy):
    out, printed = trained_proxy
    assert out.is_file()
    assert "read 153 rows" in printed and "dropped 1 invalid SMILES, 1 empty labels" in printed
    assert "| fp | yes |" in printed and "test RMSE" in printed
    dropped = pd.read_csv(out.with_name("drd3.pt.dropped.csv"), keep_default_na=False)
    assert dropped["ID"].tolist() == ["bad1", "bad2"]
    assert dropped["reason"].tolist() == ["invalid SMILES", "empty label"]


def test_train_refuses_to_overwrite_without_force(trained_proxy, assay_csv, capsys):
    out, _ = trained_proxy
    before = out.stat().st_mtime_ns
    assert main(["proxy", "train", str(assay_csv), "--out", str(out), "--quiet"]) == 2
    assert f"{out} exists; pass --force" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before


def test_info_shows_metadata_and_metrics(trained_proxy, capsys):
    out, _ = trained_proxy
    assert main(["proxy", "info", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "assay.csv" in shown and "Ligand SMILES" in shown and "Ki (nM)" in shown
    assert "pK = -log10(molar)" in shown and "scaffold (seed 0)" in shown
    assert "| fp | yes |" in shown


def test_predict_writes_scores_with_nan_for_bad_smiles(trained_proxy, tmp_path):
    out, _ = trained_proxy
    smi = tmp_path / "query.smi"
    smi.write_text("smiles\nc1ccccc1CCN first\nxyz\nCCN(CC)CC.Cl\n")
    result_path = tmp_path / "scores.csv"
    assert main(["proxy", "predict", str(out), str(smi), "--out", str(result_path)]) == 0
    scores = pd.read_csv(result_path)
    assert scores.columns.tolist() == ["smiles", "canonical_smiles", "mean", "std"]
    assert scores["smiles"].tolist() == ["c1ccccc1CCN", "xyz", "CCN(CC)CC.Cl"]
    assert scores["canonical_smiles"].tolist()[::2] == ["NCCc1ccccc1", "CCN(CC)CC"]
    assert scores["mean"].isna().tolist() == [False, True, False]


def test_missing_file_exits_2_without_traceback(tmp_path):
    missing = tmp_path / "nowhere.csv"
    result = subprocess.run(
        [sys.executable, "-m", "molgfn", "proxy", "train", str(missing)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert f"molgfn: error: {missing}: file not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert main(["proxy", "info", str(missing)]) == 2
