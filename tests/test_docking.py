"""AutoDock Vina docking as a reward component, through `molgfn reward score`, with the shipped sEH receptor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("vina", reason="the docking extra is not installed (pip install 'molgfn[docking]')")
pytest.importorskip("meeko", reason="the docking extra is not installed (pip install 'molgfn[docking]')")

REPO = Path(__file__).resolve().parents[1]
SEH = REPO / "data" / "receptors" / "sEH_4jnc"
UREA = "O=C(NCc1ccccc1)Nc1ccc(Cl)cc1"  # the classic sEH inhibitor chemotype


def dock_config(path: Path, **extra) -> Path:
    lines = [
        "[reward]",
        'oracle_cache = "oracle.sqlite"',
        "[[reward.components]]",
        'kind = "docking"',
        f'receptor = "{SEH / "4jnc_receptor.pdbqt"}"',
        f'box_from = "{SEH / "4jnc_ligand.pdb"}"',
        *[f"{k} = {v}" for k, v in extra.items()],
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def score(tmp_path: Path, config: Path, smiles: list[str], out: str = "scored.csv"):
    (tmp_path / "mols.smi").write_text("\n".join(smiles) + "\n")
    return subprocess.run(
        [sys.executable, "-m", "molgfn", "reward", "score", "--config", str(config), "mols.smi",
         "--out", out, "--force"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_docking_scores_ranks_caches_and_reports_failures(tmp_path):
    config = dock_config(tmp_path / "dock.toml")
    done = score(tmp_path, config, [UREA, "c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "[Xe]"])
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "scored.csv")
    kcal = dict(zip(table["smiles"], table["docking_raw"]))
    assert -13.0 < kcal[UREA] < -6.0 and -7.0 < kcal["c1ccccc1"] < -2.0
    assert kcal[UREA] < kcal["c1ccccc1"] - 2.0  # the urea binds the pocket, benzene barely
    assert table["docking"].between(0, 1).all()
    xenon = table[table["smiles"] == "[Xe]"].iloc[0]
    assert pd.isna(xenon["docking_raw"]) and xenon["score"] == 0.0
    assert "preparation failed" in xenon["docking_error"]
    assert "[Xe]: preparation failed" in done.stderr and "scored 0" in done.stderr
    assert "3 computed" not in done.stdout and "4 computed, 0 from the cache" in done.stdout

    again = score(tmp_path, config, [UREA, "c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "[Xe]"], out="again.csv")
    assert again.returncode == 0, again.stderr
    assert "0 computed, 4 from the cache" in again.stdout
    pd.testing.assert_series_equal(pd.read_csv(tmp_path / "again.csv")["docking_raw"], table["docking_raw"])


def test_a_molecule_over_its_timeout_scores_nan_and_the_rest_go_on(tmp_path):
    from molgfn.reward import Reward

    cfg = {
        "oracle_cache": str(tmp_path / "oracle.sqlite"),
        "components": [
            {
                "kind": "docking",
                "receptor": str(SEH / "4jnc_receptor.pdbqt"),
                "center": [-13.0, 26.7, -13.6],
                "size": [20.0, 16.3, 18.5],
                "exhaustiveness": 8,
                "timeout": 0.05,
            }
        ],
    }
    result = Reward.from_config(cfg).score([UREA, "CCCCCCCCCCCCCCCCCCCC(=O)O"])
    term = Reward.from_config(cfg).terms[0].component
    from molgfn.chem.molecules import MolBatch

    errors = term.errors_of(MolBatch.parse(result.smiles))
    assert all("timed out after 0.05 s" in e for e in errors), errors
    assert (result.score == 0).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"receptor": '"missing.pdbqt"'}, "reward.components[0].receptor: receptor file not found"),
        (
            {"box_from": None, "center": "[0, 0, 0]", "size": "[20, 0, 20]"},
            "reward.components[0].size: must be positive",
        ),
        ({"center": "[0, 0, 0]"}, "give either center and size, or box_from"),
        ({"exhaustiveness": "0"}, "reward.components[0].exhaustiveness: must be >= 1"),
    ],
)
def test_bad_docking_settings_fail_before_anything_starts(tmp_path, extra, message):
    config = dock_config(tmp_path / "dock.toml")
    text = config.read_text()
    for key, value in extra.items():
        lines = [line for line in text.splitlines() if not line.startswith(f"{key} =")]
        text = "\n".join(lines + ([f"{key} = {value}"] if value is not None else [])) + "\n"
    config.write_text(text)
    done = score(tmp_path, config, [UREA])
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "scored.csv").exists()


def test_a_training_run_docks_each_molecule_once_and_logs_the_calls(tmp_path):
    tiny = (REPO / "configs" / "tiny.toml").read_text()
    config = tmp_path / "train.toml"
    config.write_text(tiny[: tiny.index("[reward]")] + dock_config(tmp_path / "r.toml").read_text())
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "molgfn", "train", "--config", str(config), "--runs-dir", str(runs),
            "--set", "train.steps=3", "--set", "train.batch_size=8", "--set", "train.metrics_every=1",
            "--run-id", "dock", "--no-progress"]  # fmt: skip
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    from molgfn.training.runs import RunStore

    store = RunStore(runs / "dock")
    steps = store.read_steps()
    molecules = store.read_molecules()
    assert len(molecules) == 24 and set(molecules.groupby("step").size()) == {8}
    from rdkit import Chem

    seen: set[str] = set()
    for step, group in molecules.groupby("step"):
        canon = [Chem.CanonSmiles(s) for s in group["smiles"]]
        new = {c for c in canon if c not in seen}
        row = steps[steps["step"] == step].iloc[0]
        # paid once per distinct new molecule; every other molecule of the step (a repeat of an earlier
        # step's, from the cache, or of one paid for in this step) was not paid for
        assert (row["docking_calls"], row["docking_cached"]) == (len(new), len(canon) - len(new))
        seen |= new
    assert "docking_calls" in store.log_path.read_text() and "SIGTERM" not in store.log_path.read_text()
