"""A built wheel, installed without -e into a fresh virtual environment, works from any working folder: the
shipped vocabularies, proxy, generator, configs and dashboard pages come with it as package resources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest
from rdkit import Chem

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torch_geometric", "rdkit", "streamlit")

GENERATE_PAGE = """
import sys
from streamlit.testing.v1 import AppTest
from molgfn.resources import APP_DIR
at = AppTest.from_file(str(APP_DIR / "Home.py"), default_timeout=120)
at.run()
at.switch_page("pages/5_Generate.py")
at.run()
assert not at.exception, [e.value for e in at.exception]
source = at.selectbox(key="gen_source")
assert any(o.startswith("Shipped generator") for o in source.options), source.options
at.number_input(key="gen_n").set_value(20)
at.button(key="generate").click().run()
assert not at.exception, [e.value for e in at.exception]
print("generated", len(at.session_state["generated"][1]))
"""


def run(argv, cwd, env, timeout=900):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, argv))}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder, clean environment, wheel) of a fresh virtual environment holding the built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(root / "dist"), str(REPO)], root, env)
    (wheel,) = (root / "dist").glob("molgfn-*.whl")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    run([bin_dir / "pip", "install", "torch==2.13.0"], root, env)  # first: the CPU build, nothing from CUDA
    run([bin_dir / "pip", "install", str(wheel)], root, env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    work = root / "work"
    work.mkdir()
    return bin_dir, env, wheel, work


@pytest.mark.slow
def test_the_wheel_is_installed_not_the_checkout(installed):
    bin_dir, env, wheel, work = installed
    done = run(
        [bin_dir / "python", "-c", "import molgfn, molgfn.resources as r; print(molgfn.__file__);"
         "print(r.DEFAULT_GENERATOR.is_dir(), r.DEFAULT_PROXY.is_file(), r.VOCABULARIES['tiny'].is_file(),"
         " (r.APP_DIR / 'pages' / '5_Generate.py').is_file(), len(list(r.TARGETS_DIR.glob('*.csv'))))"],
        work, env,
    )  # fmt: skip
    location, found = done.stdout.strip().splitlines()
    assert str(bin_dir.parent) in location and str(REPO) not in location
    assert found == "True True True True 30"
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB")


@pytest.mark.slow
def test_sample_train_and_verify_from_a_temporary_folder(installed, tmp_path):
    bin_dir, env, _, work = installed
    molgfn = str(bin_dir / "molgfn")
    run([molgfn, "sample", "default", "--n", "50", "--out", "x.csv"], work, env)
    table = pd.read_csv(work / "x.csv")
    assert len(table) == 50
    assert all(Chem.MolFromSmiles(s) is not None for s in table["smiles"])

    runs = tmp_path / "runs"
    done = run(
        [molgfn, "train", "--set", "train.steps=3", "--runs-dir", str(runs), "--no-progress"], work, env
    )
    (folder,) = [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert done.stdout.strip().splitlines()[0] == str(folder)
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "finished" and status["step"] == 3

    # 50 steps do not reach the 0.05 bar (exit status 1, "FAIL"): the check is that it runs and learns
    done = subprocess.run(
        [molgfn, "verify", "--objective", "tb", "--steps", "50"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    tv = [float(line.split()[-1]) for line in done.stdout.splitlines() if line.lstrip().startswith("step ")]
    assert len(tv) == 2 and tv[1] < tv[0]
    assert done.stdout.splitlines()[-1].startswith("PASS" if done.returncode == 0 else "FAIL")


@pytest.mark.slow
def test_help_from_the_wheel_imports_nothing_heavy(installed):
    bin_dir, env, _, work = installed
    code = (
        "import sys, contextlib, io\nfrom molgfn.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--help'])\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = run([bin_dir / "python", "-c", code], work, env)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_the_generate_page_samples_with_the_shipped_generator(installed, tmp_path):
    bin_dir, env, _, work = installed
    env = {**env, "MOLGFN_RUNS_DIR": str(tmp_path / "runs")}
    done = run([bin_dir / "python", "-c", GENERATE_PAGE], work, env)
    assert done.stdout.strip().splitlines()[-1] == "generated 20"
