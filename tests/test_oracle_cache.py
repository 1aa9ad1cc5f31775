"""The oracle cache: an expensive component's value is computed once per molecule, ever, by whichever
process gets there first, and failures are kept too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from molgfn.cli import main
from molgfn.reward import Reward

SLOW_PLUGIN = """
import os, time

def length(smiles):
    with open(os.environ["CALLS"], "a") as fh:
        for s in smiles:
            fh.write(s + "\\n")
    time.sleep(0.3)
    return [0.0 if "N" in s else len(s) / 100 for s in smiles]
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "slowplugin.py").write_text(SLOW_PLUGIN)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("CALLS", str(calls))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(tmp_path))
    return calls


def reward_config(cache: Path, expensive: bool = True) -> dict:
    return {
        "oracle_cache": str(cache),
        "components": [
            {"kind": "python", "name": "length", "function": "slowplugin:length", "expensive": expensive}
        ],
    }


def test_values_are_computed_once_and_kept_across_rewards(plugin, tmp_path):
    cache = tmp_path / "oracle.sqlite"
    first = Reward.from_config(reward_config(cache)).score(["CCO", "OCC", "c1ccccc1", "CCO"])
    # "CCO" and "OCC" are one molecule: computed once; the repeat in the batch too
    assert sorted(plugin.read_text().split()) == ["CCO", "c1ccccc1"]
    again = Reward.from_config(reward_config(cache))
    second = again.score(["c1ccccc1", "CCO", "CCCC"])
    assert sorted(plugin.read_text().split()) == ["CCCC", "CCO", "c1ccccc1"]
    np.testing.assert_array_equal(second.raw["length"][:2], [first.raw["length"][2], first.raw["length"][0]])
    stats = again.terms[0].component.stats
    assert (stats.cached, stats.computed) == (2, 1)


def test_without_expensive_nothing_is_cached(plugin, tmp_path):
    reward = Reward.from_config(reward_config(tmp_path / "oracle.sqlite", expensive=False))
    reward.score(["CCO"])
    reward.score(["CCO"])
    assert plugin.read_text().split() == ["CCO", "CCO"]
    assert not (tmp_path / "oracle.sqlite").exists()


def test_processes_scoring_the_same_molecules_pay_for_each_once(plugin, tmp_path):
    cache = tmp_path / "oracle.sqlite"
    smiles = [f"C{'C' * k}O" for k in range(12)]
    script = textwrap.dedent(
        f"""
        from molgfn.reward import Reward
        reward = Reward.from_config({reward_config(cache)!r})
        for start in range(0, 12, 3):
            reward.score({smiles!r}[start:start + 3])
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy()) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    calls = plugin.read_text().split()
    assert sorted(calls) == sorted(smiles)  # three processes, every molecule computed exactly once


def test_cache_info_and_clear(plugin, tmp_path, capsys):
    cache = tmp_path / "oracle.sqlite"
    Reward.from_config(reward_config(cache)).score(["CCO", "CCN"])
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "1 oracles, 2 values" in out and "python" in out
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    assert "deleted 2 values" in capsys.readouterr().out
    Reward.from_config(reward_config(cache)).score(["CCO"])
    assert sorted(plugin.read_text().split()) == ["CCN", "CCO", "CCO"]  # cleared: computed again


def test_a_runs_progress_counts_paid_and_cached_oracle_calls(plugin, tmp_path, monkeypatch):
    from molgfn.dashboard import format_oracle, run_progress
    from molgfn.training.runs import RunStore

    repo = Path(__file__).resolve().parents[1]
    config = tmp_path / "run.toml"
    text = (repo / "configs" / "tiny.toml").read_text()
    text = text.replace("[reward]\n", f'[reward]\noracle_cache = "{tmp_path / "oracle.sqlite"}"\n')
    extra = 'kind = "python"\nname = "length"\nfunction = "slowplugin:length"\nexpensive = true\n'
    config.write_text(text + "\n[[reward.components]]\n" + extra)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(config), "--steps", "4", "--set", "run.workers=0"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    progress = run_progress(RunStore.open(folder))
    paid = len(plugin.read_text().split())  # molecules the plugin was called on
    assert progress.oracle_paid == paid and 0 < paid <= 64
    assert progress.oracle_paid + progress.oracle_cached == 64  # 4 steps x 16 molecules, each once
    assert progress.oracle_in_flight is None  # finished, nothing in flight
    assert format_oracle(progress) == f"oracle: {paid} paid · {64 - paid} cached"
    plain = run_progress(RunStore.open(folder))
    assert plain.step == 4
