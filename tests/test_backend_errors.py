"""Bad backend settings fail in one line, exit 2, before anything starts (no Ray is started here)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from molgfn.cli import main

REPO = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on (loopback only)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_is_one_line_before_the_run_folder(tmp_path, capsys):
    port = closed_port()
    code = main(
        ["train", "--config", "tiny", "--runs-dir", str(tmp_path / "runs"), "--set", "run.backend=ray",
         "--set", f"run.ray_address=127.0.0.1:{port}"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert (
        len(err.splitlines()) == 1
        and f"run.ray_address: cannot reach the Ray head at 127.0.0.1:{port}" in err
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_malformed_ray_address_names_the_field(tmp_path, capsys):
    code = main(["train", "--config", "tiny", "--set", "run.backend=ray", "--set", "run.ray_address=nohost"])
    assert code == 2
    assert "run.ray_address: must be '', 'auto' or HOST:PORT" in capsys.readouterr().err


def test_reward_score_unreachable_head(tmp_path, capsys):
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\n")
    port = closed_port()
    code = main(
        ["reward", "score", str(smi), "--out", str(tmp_path / "o.csv"), "--backend", "ray",
         "--ray-address", f"127.0.0.1:{port}"]
    )  # fmt: skip
    assert code == 2
    assert "--ray-address: cannot reach the Ray head" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("missing", "argv", "expected"),
    [
        ("ray", ["train", "--config", "tiny", "--set", "run.backend=ray"], "run.backend: 'ray' needs Ray"),
        (
            "ray",
            ["reward", "score", "{smi}", "--out", "{out}", "--backend", "ray"],
            "--backend: 'ray' needs Ray",
        ),
    ],
)
def test_ray_not_installed(tmp_path, missing, argv, expected):
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\n")
    argv = [a.format(smi=smi, out=tmp_path / "o.csv") for a in argv]
    code = (
        f"import sys; sys.modules[{missing!r}] = None; from molgfn.cli import main; sys.exit(main({argv!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "pip install 'molgfn[ray]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_docking_without_vina_is_one_line(tmp_path):
    receptor = REPO / "data" / "receptors" / "sEH_4jnc"
    config = tmp_path / "dock.toml"
    config.write_text(
        f'[reward]\noracle_cache = "{tmp_path / "c.sqlite"}"\n[[reward.components]]\nkind = "docking"\n'
        f'receptor = "{receptor / "4jnc_receptor.pdbqt"}"\nbox_from = "{receptor / "4jnc_ligand.pdb"}"\n'
    )
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\n")
    argv = ["reward", "score", "--config", str(config), str(smi), "--out", str(tmp_path / "o.csv")]
    code = f"import sys; sys.modules['vina'] = None; from molgfn.cli import main; sys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "pip install 'molgfn[docking]' (cannot import vina)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()
