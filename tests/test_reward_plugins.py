"""User plugins as reward components: a Python callable and an external command, and how each fails."""

from __future__ import annotations

import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from molgfn.errors import MolgfnError
from molgfn.reward import Reward

TIMEOUT = 1.0
SLACK = 4.0  # a hung plugin must be reported within this many seconds past its timeout


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """Write a module of plugin functions into tmp_path, importable under a fresh name."""
    name = f"reward_plugin_{uuid.uuid4().hex[:8]}"
    source = textwrap.dedent(
        """
        import time

        CALLS = []

        def length(smiles):
            CALLS.append(list(smiles))
            return [min(len(s) / 10.0, 1.0) for s in smiles]

        def fails(smiles):
            raise RuntimeError("model file missing")

        def hangs(smiles):
            time.sleep(60)
            return [0.5] * len(smiles)

        def too_few(smiles):
            return [0.5] * (len(smiles) - 1)

        def garbage(smiles):
            return ["high"] * len(smiles)

        def nan(smiles):
            return [float("nan")] * len(smiles)

        NOT_CALLABLE = 3
        """
    )
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def python_reward(module: str, function: str, **extra) -> Reward:
    component = {"name": "myplugin", "kind": "python", "function": f"{module}:{function}", "timeout": TIMEOUT}
    return Reward.from_config({"components": [component | extra]})


def test_python_plugin_scores_valid_molecules_in_one_batch(plugin_module) -> None:
    reward = python_reward(plugin_module, "length")
    result = reward.score(["CCO", "bad(", "c1ccccc1"])
    np.testing.assert_allclose(result.score, [0.3, 0.0, 0.8])
    np.testing.assert_allclose(result.raw["myplugin"][[0, 2]], [0.3, 0.8])
    assert sys.modules[plugin_module].CALLS == [["CCO", "c1ccccc1"]]


def test_python_plugin_with_transform_and_other_components(plugin_module) -> None:
    reward = Reward.from_config(
        {
            "components": [
                {"kind": "python", "name": "p", "function": f"{plugin_module}:length", "weight": 1.0,
                 "transform": {"kind": "linear", "low": 0.0, "high": 0.5}},
                {"kind": "qed", "weight": 1.0},
            ]
        }
    )  # fmt: skip
    result = reward.score(["CC", "CCCCCC"])
    np.testing.assert_allclose(result.transformed["p"], [0.4, 1.0])
    np.testing.assert_allclose(result.score, np.sqrt(result.transformed["p"] * result.raw["qed"]))


def test_python_plugin_that_raises_names_plugin_and_error(plugin_module) -> None:
    with pytest.raises(MolgfnError, match=r"python plugin 'myplugin'.*RuntimeError: model file missing"):
        python_reward(plugin_module, "fails").score(["CCO"])


def test_python_plugin_that_hangs_times_out(plugin_module) -> None:
    reward = python_reward(plugin_module, "hangs")
    start = time.monotonic()
    with pytest.raises(MolgfnError, match=r"python plugin 'myplugin'.*timed out after 1 s"):
        reward.score(["CCO"])
    assert time.monotonic() - start < TIMEOUT + SLACK


@pytest.mark.parametrize(
    ("function", "message"),
    [("too_few", r"returned 1 values .* for 2 SMILES"), ("garbage", "not numbers"), ("nan", "non-finite")],
)
def test_python_plugin_bad_output_names_plugin(plugin_module, function, message) -> None:
    with pytest.raises(MolgfnError, match=rf"python plugin 'myplugin'.*{message}"):
        python_reward(plugin_module, function).score(["CCO", "CCN"])


def test_python_plugin_out_of_range_with_identity_names_component(plugin_module, tmp_path) -> None:
    (tmp_path / f"{plugin_module}_pk.py").write_text("def pk(smiles):\n    return [7.5] * len(smiles)\n")
    reward = Reward.from_config(
        {"components": [{"name": "pk", "kind": "python", "function": f"{plugin_module}_pk:pk"}]}
    )
    with pytest.raises(MolgfnError, match=r"component 'pk'.*outside \[0, 1\]"):
        reward.score(["CCO"])
    sys.modules.pop(f"{plugin_module}_pk", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon_here", "must look like 'package.module:function'"),
        ("molgfn_no_such_module_xyz:f", "cannot import module 'molgfn_no_such_module_xyz'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:NOT_CALLABLE", "is not callable"),
    ],
)
def test_python_plugin_bad_function_spec_is_a_config_error(plugin_module, spec, message) -> None:
    component = {"name": "myplugin", "kind": "python", "function": spec.format(module=plugin_module)}
    with pytest.raises(
        MolgfnError, match=rf"reward\.components\[0\]\.function: python plugin 'myplugin': .*{message}"
    ):
        Reward.from_config({"components": [component]})


SCRIPTS = {
    "length": "import sys\nfor line in sys.stdin:\n    print(min(len(line.strip()) / 10, 1.0))\n",
    "fails": "import sys\nsys.stdin.read()\nprint('cannot load model', file=sys.stderr)\nsys.exit(3)\n",
    "hangs": "import sys, time\nsys.stdin.read()\ntime.sleep(60)\n",
    "garbage": "import sys\nfor line in sys.stdin:\n    print('score:', 0.5)\n",
    "too_many": "import sys\nfor line in sys.stdin:\n    print(0.5)\nprint(0.5)\n",
    "nan": "import sys\nfor line in sys.stdin:\n    print('nan')\n",
}


def command_reward(tmp_path: Path, script: str) -> Reward:
    (tmp_path / f"{script}.py").write_text(SCRIPTS[script])
    # a relative script path: resolved in the config's folder (base_dir), where the command runs
    component = {
        "name": "ext",
        "kind": "command",
        "command": [sys.executable, f"{script}.py"],
        "timeout": TIMEOUT,
    }
    return Reward.from_config({"components": [component]}, base_dir=tmp_path)


def test_command_plugin_scores_valid_molecules(tmp_path) -> None:
    result = command_reward(tmp_path, "length").score(["CCO", "bad(", "c1ccccc1", "CCCCCCCCCCCC"])
    np.testing.assert_allclose(result.score, [0.3, 0.0, 0.8, 1.0])
    assert result.valid.tolist() == [True, False, True, True]


def test_command_plugin_nonzero_exit_names_plugin_and_stderr(tmp_path) -> None:
    with pytest.raises(MolgfnError, match=r"command plugin 'ext'.*exited with status 3: cannot load model"):
        command_reward(tmp_path, "fails").score(["CCO"])


def test_command_plugin_that_hangs_is_killed_after_timeout(tmp_path) -> None:
    reward = command_reward(tmp_path, "hangs")
    start = time.monotonic()
    with pytest.raises(MolgfnError, match=r"command plugin 'ext'.*timed out after 1 s"):
        reward.score(["CCO"])
    assert time.monotonic() - start < TIMEOUT + SLACK


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("garbage", r"output line 1 is not a number: 'score: 0.5'"),
        ("too_many", r"wrote 3 lines for 2 SMILES"),
        ("nan", "non-finite"),
    ],
)
def test_command_plugin_bad_output_names_plugin(tmp_path, script, message) -> None:
    with pytest.raises(MolgfnError, match=rf"command plugin 'ext'.*{message}"):
        command_reward(tmp_path, script).score(["CCO", "CCN"])


def test_command_plugin_missing_program_is_a_config_error(tmp_path) -> None:
    component = {"name": "ext", "kind": "command", "command": ["molgfn-no-such-program-xyz"]}
    with pytest.raises(MolgfnError, match=r"reward\.components\[0\]\.command: .*'ext'.*program not found"):
        Reward.from_config({"components": [component]}, base_dir=tmp_path)


def test_plugins_are_not_called_when_no_molecule_is_valid(plugin_module) -> None:
    result = python_reward(plugin_module, "length").score(["bad(", ""])
    np.testing.assert_array_equal(result.score, [0.0, 0.0])
    assert sys.modules[plugin_module].CALLS == []


def _alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (an unreaped zombie has already stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_command_plugin_timeout_also_kills_its_children(tmp_path) -> None:
    script = (
        "import subprocess, sys\n"
        "sys.stdin.read()\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "child.wait()\n"
    )
    (tmp_path / "spawner.py").write_text(script)
    component = {"name": "ext", "kind": "command", "command": [sys.executable, "spawner.py"], "timeout": 1.5}
    reward = Reward.from_config({"components": [component]}, base_dir=tmp_path)
    with pytest.raises(MolgfnError, match="timed out"):
        reward.score(["CCO"])
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 2.0
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
