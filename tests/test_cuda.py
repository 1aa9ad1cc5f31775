"""The CUDA path: exactness, training, checkpoints and generation on a GPU. Marked ``cuda``: they run
whenever torch finds a CUDA device and are skipped otherwise (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from molgfn.candidates.generate import load_generator
from molgfn.cli import main
from molgfn.training.verify import verify, verify_config

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize(
    ("objective", "steps", "overrides"),
    [
        ("tb", 400, {}),
        ("entppo", 60, {"train.lr": 1e-3}),
        ("entppo", 60, {"train.lr": 1e-3, "objective.ppo_value_head": "shared"}),
    ],
    ids=["tb", "entppo", "entppo-shared"],
)
def test_training_on_the_gpu_reaches_the_exact_target(objective, steps, overrides):
    cfg = verify_config(objective, steps, **{"run.device": "cuda", **overrides})
    result = verify(cfg, eval_every=steps)
    assert result.tv_initial > 0.2
    assert result.tv_final < 0.05, f"{objective} {overrides} on cuda: total variation {result.tv_final:.4f}"


def test_a_gpu_run_checkpoints_resumes_and_samples_on_the_cpu(tmp_path):
    runs = tmp_path / "runs"
    args = [
        "train",
        "--config",
        "configs/tiny.toml",
        "--runs-dir",
        str(runs),
        "--run-id",
        "g",
        "--no-progress",
    ]
    extra = ["--set", "run.device='cuda'", "--set", "train.steps=4", "--set", "train.checkpoint_every=2"]
    assert main([*args, *extra]) == 0
    state = torch.load(runs / "g" / "checkpoints" / sorted((runs / "g" / "checkpoints").iterdir())[-1].name)
    assert all(t.device.type == "cuda" for t in state["algorithm"]["policy"].values())
    assert main(["train", "--resume", "g", "--runs-dir", str(runs), "--steps", "6", "--no-progress"]) == 0
    out = tmp_path / "cpu.csv"
    assert main(["sample", str(runs / "g"), "--n", "20", "--device", "cpu", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 20 and all(Chem.MolFromSmiles(s) is not None for s in table["smiles"])


def test_the_shipped_generator_samples_on_the_gpu_as_it_does_on_the_cpu():
    """Same policy, same β: the distribution of molecule sizes agrees between the devices (the draws differ,
    the policy does not)."""
    sizes = {}
    for device in ("cuda", "cpu"):
        generator = load_generator("default", device=device)
        assert next(generator.model.policy.parameters()).device.type == device
        table, report = generator.generate(512, seed=0)
        generator.close()
        assert report.produced == 512
        mols = [Chem.MolFromSmiles(s) for s in table["smiles"]]
        assert all(m is not None for m in mols)
        sizes[device] = np.array([m.GetNumHeavyAtoms() for m in mols])
    assert abs(sizes["cuda"].mean() - sizes["cpu"].mean()) < 0.1 * sizes["cpu"].mean()
