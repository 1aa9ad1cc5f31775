"""The dashboard's package helpers: launching, the queue, security (names, uploads, argv, host) and
reliability (stop leaves a resumable checkpoint; trainings outlive the dashboard process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgfn import dashboard
from molgfn.candidates.reference import ReferenceSet
from molgfn.cli import build_parser
from molgfn.cli import main as molgfn_main
from molgfn.config import load_config
from molgfn.dashboard.cli import app_command
from molgfn.dashboard.drawing import compile_smarts, mol_svg, substructure_mask
from molgfn.dashboard.explore import (
    chemical_space,
    diversity_over_training,
    modes_discovered,
    molecule_properties,
    molecule_view,
    nearest_reference,
    step_windows,
)
from molgfn.errors import MolgfnError
from molgfn.training.runs import RunStore, pid_alive

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"


def tiny_cfg(*overrides: str):
    return load_config(TINY, list(overrides))


def wait(predicate, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(runs_dir: Path, run_id: str) -> str:
    frame = dashboard.dashboard_runs(runs_dir)
    row = frame.loc[frame["id"] == run_id]
    return row["status"].iloc[0] if len(row) else "missing"


# ------------------------------------------------------------------------------------------- security
def test_app_listens_on_localhost_by_default():
    args = build_parser().parse_args(["app"])
    assert args.host == "127.0.0.1"
    argv = app_command(args.host, args.port, args.max_upload_mb)
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"
    assert all(isinstance(a, str) for a in argv)


def test_streamlit_config_binds_localhost():
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'address = "127.0.0.1"' in text and "gatherUsageStats = false" in text


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.csv", "win.csv"),
        ("/abs/path/data.csv", "data.csv"),
        (".hidden.csv", "hidden.csv"),
        ("my table (1).csv", "my_table__1_.csv"),
        ("", "upload"),
        ("..", "upload"),
    ],
)
def test_upload_names_are_sanitised(name, expected):
    assert dashboard.safe_file_name(name) == expected


def test_uploads_stay_inside_the_runs_dir(tmp_path):
    path = dashboard.save_upload("../../../evil.csv", b"smiles,pK\nCCO,5\n", tmp_path, max_bytes=1000)
    assert path.resolve().is_relative_to((tmp_path / ".dashboard" / "uploads").resolve())
    assert path.read_bytes() == b"smiles,pK\nCCO,5\n"


def test_an_upload_over_the_limit_is_refused_with_a_message(tmp_path):
    with pytest.raises(MolgfnError, match="over the upload limit"):
        dashboard.save_upload("big.csv", b"x" * 2001, tmp_path, max_bytes=2000)
    assert (
        not list((tmp_path / ".dashboard" / "uploads").glob("*"))
        if (tmp_path / ".dashboard").exists()
        else True
    )


def test_an_upload_that_is_not_a_table_is_refused(tmp_path):
    with pytest.raises(MolgfnError, match="must be a table"):
        dashboard.save_upload("script.sh", b"rm -rf /", tmp_path, max_bytes=1000)


@pytest.mark.parametrize("run_id", ["../x", "a/b", "..", "x; rm -rf ~", "$(touch pwned)"])
def test_run_ids_cannot_escape_the_runs_dir(tmp_path, run_id):
    with pytest.raises(MolgfnError):
        dashboard.submit_run(tiny_cfg(), tmp_path, run_id=run_id)
    assert not (tmp_path / ".dashboard" / "configs").exists() or not list(
        (tmp_path / ".dashboard" / "configs").iterdir()
    )


def test_the_training_command_is_an_argv_list_without_a_shell(tmp_path):
    argv = dashboard.train_argv(tmp_path / "c.toml", "my-run", tmp_path)
    assert argv[:4] == [sys.executable, "-m", "molgfn", "train"] and all(isinstance(a, str) for a in argv)
    source = "".join(path.read_text() for path in Path(dashboard.__file__).parent.glob("*.py"))
    assert "shell=True" not in source and "os.system" not in source


def test_settings_from_environment(tmp_path):
    settings = dashboard.Settings.from_env(
        {"MOLGFN_RUNS_DIR": str(tmp_path), "MOLGFN_MAX_CONCURRENT": "3", "MOLGFN_MAX_UPLOAD_MB": "0.5"}
    )
    assert settings.runs_dir == tmp_path.resolve() and settings.max_concurrent == 3
    assert settings.max_upload_bytes == 512 * 1024
    with pytest.raises(MolgfnError, match="MOLGFN_MAX_CONCURRENT"):
        dashboard.Settings.from_env({"MOLGFN_MAX_CONCURRENT": "0"})


# ------------------------------------------------------------------------------------------------ forms
def test_form_validation_names_each_wrong_field():
    data = dashboard.config_template("tiny")
    fields = {"train.batch_size": 0, "train.steps": -1, "env.max_frags": 5}
    for key, value in fields.items():
        dashboard.set_field(data, key, value)
    cfg, errors = dashboard.validate_form(data, fields)
    assert cfg is None
    assert errors == {"train.batch_size": "must be >= 1 (got 0)", "train.steps": "must be >= 1 (got -1)"}


def test_form_validation_checks_rules_between_fields():
    data = dashboard.config_template("tiny")
    fields = {"train.beta_min": 9.0, "train.beta_max": 2.0}
    for key, value in fields.items():
        dashboard.set_field(data, key, value)
    cfg, errors = dashboard.validate_form(data, fields)
    assert cfg is None and errors == {"train.beta_min": "must be <= train.beta_max (got 9 > 2)"}


def test_form_validation_passes_a_good_form():
    data = dashboard.config_template("tiny")
    fields = {"train.beta_min": 2.0, "train.beta_max": 9.0, "reward.components[0].weight": 0.5}
    dashboard.set_field(data, "train.beta_min", 2.0)
    dashboard.set_field(data, "train.beta_max", 9.0)
    data["reward"]["components"][0]["weight"] = 0.5
    cfg, errors = dashboard.validate_form(data, fields)
    assert errors == {} and cfg.train.beta_max == 9.0 and cfg.reward["components"][0]["weight"] == 0.5


def test_reward_errors_map_to_the_weight_field():
    data = dashboard.config_template("tiny")
    data["reward"]["components"][1]["weight"] = -2.0
    _, errors = dashboard.validate_form(data, {"reward.components[1].weight": -2.0})
    assert list(errors) == ["reward.components[1].weight"]


def test_tail_and_durations(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    assert dashboard.tail(log, 3) == "line 97\nline 98\nline 99"
    assert dashboard.tail(tmp_path / "missing.log") == ""
    assert dashboard.format_duration(75) == "1 min 15 s" and dashboard.format_duration(None) == "—"


# ---------------------------------------------------------------------------------------------- analysis
def test_svg_highlights_a_substructure_and_handles_bad_input():
    svg = mol_svg("c1ccccc1CCO", 200, 150, "c1ccccc1")
    assert svg.startswith("<svg") and "</svg>" in svg
    assert "invalid SMILES" in mol_svg("not a smiles")
    with pytest.raises(MolgfnError, match="not a valid SMARTS"):
        compile_smarts("c1ccc(")
    assert substructure_mask(["CCO", "c1ccccc1O", "xx"], "[OX2H]").tolist() == [True, True, False]


def test_properties_views_and_reference():
    props = molecule_properties(["CCO", "c1ccccc1O", "CCO", "bad", "O=CCCc1ccccc1"])
    assert list(props.columns) == ["qed", "sa", "mw", "logp", "tpsa", "hbd", "hba", "alerts"]
    assert props["alerts"].iloc[:2].tolist() == [0, 0] and props["alerts"].iloc[4] >= 1  # aldehyde
    assert props[["hbd", "hba"]].iloc[:3].to_numpy().tolist() == [[1, 1], [1, 1], [1, 1]]
    assert props["tpsa"].iloc[0] == pytest.approx(20.23, abs=0.01)  # one hydroxyl
    assert props["mw"].iloc[0] == pytest.approx(46.069, abs=0.01) and np.isnan(props["qed"].iloc[3])
    frame = pd.DataFrame({"step": [1, 1, 2], "smiles": ["CCO", "CCN", "CCO"], "reward": [0.5, 0.4, 0.5]})
    view = molecule_view(frame)
    assert list(view["smiles"]) == ["CCO", "CCN"] and list(view["samples"]) == [2, 1]
    ref = ReferenceSet(["CCO", "c1ccccc1"])
    assert ref.is_novel(["CCO", "CCN"]).tolist() == [False, True]
    near, sim = nearest_reference(ref, "Cc1ccccc1")
    assert near == "c1ccccc1" and 0 < sim < 1
    assert nearest_reference(ref, "bad")[0] is None


def test_modes_and_windows():
    smiles = ["c1ccccc1O", "c1ccccc1O", "CCCCCCCCO", "c1ccccc1N", "CC"]
    counts = modes_discovered(smiles, [0.9, 0.9, 0.8, 0.95, 0.1], threshold=0.7)
    assert counts.tolist() == [1, 1, 2, counts[3], counts[3]] and counts[3] in (2, 3)
    assert step_windows(0) == [] and step_windows(7, 20) == [(i, i) for i in range(1, 8)]
    windows = step_windows(95, 20)
    assert windows[0] == (1, 5) and windows[-1] == (91, 95)
    molecules = pd.DataFrame(
        {"step": [1, 1, 2, 2, 3], "smiles": smiles, "reward": [0.9, 0.9, 0.8, 0.95, 0.1]}
    )
    steps = pd.DataFrame({"step": [1, 2, 3], "trajectories": [2, 4, 5]})
    div = diversity_over_training(molecules, steps, step_windows(3, 20), 0.7)
    assert list(div["trajectories"]) == [2, 4, 5] and list(div["modes"]) == [1, counts[3], counts[3]]


def test_chemical_space_projects_generated_and_reference():
    gen, ref, used = chemical_space(["CCO", "c1ccccc1O", "CCN", "bad"], ["CCCC", "c1ccccc1", "CC(=O)O"])
    assert gen.shape == (4, 2) and np.isnan(gen[3]).all() and np.isfinite(gen[:3]).all()
    assert ref.shape == (3, 2) and list(used) == [0, 1, 2]


# ------------------------------------------------------------------------------------- launch and queue
@pytest.fixture
def runs_dir(tmp_path):
    yield tmp_path / "runs"
    for entry in dashboard.launched(tmp_path / "runs").values():  # never leave trainers behind
        if entry.get("pid") and pid_alive(entry["pid"]):
            os.kill(entry["pid"], signal.SIGKILL)


def test_a_launched_run_trains_in_the_background_and_finishes(runs_dir):
    submitted = dashboard.submit_run(tiny_cfg("train.steps=3"), runs_dir, run_id="bg")
    assert submitted.state == "started"
    wait(lambda: status_of(runs_dir, "bg") == "finished", what="the run to finish")
    store = RunStore.open("bg", runs_dir)
    assert store.summary()["step"] == 3 and store.read_molecules().shape[0] == 48
    progress = dashboard.run_progress(store)
    assert progress.step == 3 and progress.fraction == 1.0


def test_a_config_the_trainer_rejects_shows_as_failed_with_its_output(runs_dir):
    cfg = tiny_cfg()
    from dataclasses import replace

    broken = replace(cfg, env=replace(cfg.env, vocab=str(runs_dir / "missing-vocab.txt")))
    dashboard.submit_run(broken, runs_dir, run_id="nostart")
    wait(lambda: status_of(runs_dir, "nostart") == "failed", what="the launch to fail")
    frame = dashboard.dashboard_runs(runs_dir)
    assert "missing-vocab" in frame.loc[frame["id"] == "nostart", "message"].iloc[0]


def test_the_limit_queues_runs_and_a_freed_slot_starts_the_next(runs_dir):
    first = dashboard.submit_run(tiny_cfg("train.steps=3"), runs_dir, run_id="one", max_concurrent=1)
    second = dashboard.submit_run(tiny_cfg("train.steps=3"), runs_dir, run_id="two", max_concurrent=1)
    assert (first.state, second.state) == ("started", "queued")
    assert status_of(runs_dir, "two") == "queued"
    assert [q["run_id"] for q in dashboard.read_queue(runs_dir)] == ["two"]
    wait(lambda: status_of(runs_dir, "one") == "finished", what="the first run")
    assert dashboard.pump_queue(runs_dir, max_concurrent=1) == ["two"]
    wait(lambda: status_of(runs_dir, "two") == "finished", what="the queued run")
    assert dashboard.read_queue(runs_dir) == []


def test_a_queued_run_can_be_cancelled(runs_dir):
    dashboard.submit_run(tiny_cfg("train.steps=3"), runs_dir, run_id="a", max_concurrent=1)
    dashboard.submit_run(tiny_cfg("train.steps=3"), runs_dir, run_id="b", max_concurrent=1)
    assert dashboard.cancel_queued(runs_dir, "b") and not dashboard.cancel_queued(runs_dir, "b")
    assert status_of(runs_dir, "b") == "missing"


def test_stopping_a_run_leaves_a_resumable_checkpoint(runs_dir):
    dashboard.submit_run(
        tiny_cfg("train.steps=100000", "train.checkpoint_every=1000"), runs_dir, run_id="long"
    )
    wait(
        lambda: (
            status_of(runs_dir, "long") == "running"
            and dashboard.run_progress(RunStore.open("long", runs_dir)).step >= 2
        )
    )
    store = RunStore.open("long", runs_dir)
    store.request_stop()
    wait(lambda: store.status()["status"] == "stopped", what="the run to stop")
    (step, checkpoint), *_ = store.checkpoints()[::-1]
    assert checkpoint.is_file() and step == store.status()["step"] >= 2
    # it resumes from that checkpoint (a couple more steps)
    assert (
        molgfn_main(
            [
                "train",
                "--resume",
                "long",
                "--runs-dir",
                str(runs_dir),
                "--steps",
                str(step + 2),
                "--no-progress",
            ]
        )
        == 0
    )
    assert store.status()["status"] == "finished" and store.summary()["step"] == step + 2


def test_trainings_outlive_a_killed_dashboard_and_a_new_one_sees_them(runs_dir, tmp_path):
    """A separate 'dashboard' process launches a run and is killed (SIGKILL); the training goes on, and
    this process (a restarted dashboard) sees it running with its pid, then finished."""
    script = tmp_path / "dashboard.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            from molgfn import dashboard
            from molgfn.config import load_config
            cfg = load_config({str(TINY)!r}, ["train.steps=100000", "train.checkpoint_every=1000"])
            dashboard.submit_run(cfg, {str(runs_dir)!r}, run_id="survivor")
            print("launched", flush=True)
            time.sleep(600)
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    fake = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert fake.stdout.readline().strip() == "launched"
        wait(lambda: status_of(runs_dir, "survivor") == "running", what="the run to start")
    finally:
        fake.kill()
        fake.wait()
    time.sleep(1.0)
    store = RunStore.open("survivor", runs_dir)
    pid = store.status()["pid"]
    first = store.summary()["step"]
    assert pid_alive(pid) and status_of(runs_dir, "survivor") == "running"
    wait(lambda: store.summary()["step"] > first, what="the run to keep training")
    os.kill(pid, signal.SIGTERM)
    wait(lambda: store.status()["status"] == "stopped", what="the run to stop")
    launched = json.loads((runs_dir / ".dashboard" / "launched" / "survivor.json").read_text())
    assert launched["pid"] == pid


def test_a_run_on_an_uploaded_table_waits_for_its_proxy_then_trains(runs_dir):
    lines = (ROOT / "data" / "targets" / "CHEMBL244_Ki.csv").read_text().splitlines()[:201]
    table = dashboard.save_upload("fxa small.csv", ("\n".join(lines) + "\n").encode(), runs_dir, 10**6)
    proxy, pid = dashboard.start_proxy_training(table, runs_dir, model="fp")
    assert proxy.parent == (runs_dir / ".dashboard" / "proxies").resolve() and not proxy.exists()
    data = dashboard.config_template("tiny")
    data["train"]["steps"] = 3
    data["reward"]["components"].insert(
        0,
        {
            "name": "activity",
            "kind": "proxy",
            "path": str(proxy),
            "transform": {"kind": "sigmoid", "low": 5.0, "high": 9.0},
        },
    )
    from molgfn.config import config_from_dict

    cfg = config_from_dict(data, check_files=False)
    submitted = dashboard.submit_run(cfg, runs_dir, run_id="on-upload", requires=proxy, requires_pid=pid)
    assert submitted.state == "queued" and "proxy" in dashboard.dashboard_runs(runs_dir)["message"].iloc[0]
    wait(lambda: proxy.exists(), timeout=120, what="the proxy")
    wait(lambda: dashboard.pump_queue(runs_dir) == ["on-upload"], timeout=30, what="the queued run to start")
    wait(lambda: status_of(runs_dir, "on-upload") == "finished", what="the run")
    assert dashboard.run_proxy_path(RunStore.open("on-upload", runs_dir)) == proxy
    assert "activity" in RunStore.open("on-upload", runs_dir).read_molecules().columns


def test_a_run_whose_proxy_training_died_fails_to_start(runs_dir, tmp_path):
    bad = tmp_path / "empty.csv"
    bad.write_text("smiles,pK\n")
    proxy, pid = dashboard.start_proxy_training(bad, runs_dir)
    dashboard.submit_run(
        tiny_cfg("train.steps=3"), runs_dir, run_id="orphan", requires=proxy, requires_pid=pid
    )
    wait(lambda: not pid_alive(pid), timeout=120, what="the proxy training to fail")
    dashboard.pump_queue(runs_dir)
    frame = dashboard.dashboard_runs(runs_dir)
    row = frame.loc[frame["id"] == "orphan"].iloc[0]
    assert row["status"] == "failed" and "was not made" in row["message"]


def test_form_validation_reports_a_rule_between_fields_beside_a_range_error():
    data = dashboard.config_template("tiny")
    fields = {"train.batch_size": 0, "train.beta_min": 9.0, "train.beta_max": 2.0}
    for key, value in fields.items():
        dashboard.set_field(data, key, value)
    _, errors = dashboard.validate_form(data, fields)
    assert errors == {
        "train.batch_size": "must be >= 1 (got 0)",
        "train.beta_min": "must be <= train.beta_max (got 9 > 2)",
    }


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
@pytest.mark.parametrize("how", ["molgfn app", "streamlit run app/Home.py"])
def test_the_server_listens_on_localhost_only_by_default(how, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if how == "molgfn app":
        argv = [sys.executable, "-m", "molgfn", "app", "--port", str(port), "--runs-dir", str(tmp_path)]
    else:  # from the repository root, with .streamlit/config.toml
        argv = [sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.port", str(port)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MOLGFN_RUNS_DIR=str(tmp_path))
    server = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        addresses = wait(lambda: _listening_addresses(port), timeout=60, what="the server to listen")
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1 (little-endian hex), nothing else
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_only_stopped_or_interrupted_runs_resume(runs_dir):
    dashboard.submit_run(tiny_cfg("train.steps=3"), runs_dir, run_id="done")
    wait(lambda: status_of(runs_dir, "done") == "finished", what="the run")
    with pytest.raises(MolgfnError, match="only a stopped or interrupted run"):
        dashboard.resume_run(runs_dir, "done")
    with pytest.raises(MolgfnError):
        dashboard.resume_run(runs_dir, "../done")
    argv = dashboard.resume_argv("done", runs_dir)
    assert argv[3:6] == ["train", "--resume", "done"]


def test_the_default_template_validates_with_the_shipped_proxy():
    from molgfn.proxy import DEFAULT_PROXY

    data = dashboard.config_template("default")
    components = [c for c in dashboard.reward_components(data) if c.get("kind") != "proxy"]
    components.insert(
        0,
        {
            "name": "activity",
            "kind": "proxy",
            "path": str(DEFAULT_PROXY),
            "weight": 1.0,
            "transform": {"kind": "sigmoid", "low": 5.0, "high": 9.0},
        },
    )
    data["reward"]["components"] = components
    cfg, errors = dashboard.validate_form(data, {"train.steps": 2000})
    assert errors == {} and cfg.env.vocab == "default"
    assert [dashboard.component_name(c) for c in cfg.reward["components"]] == [
        "activity",
        "qed",
        "sa",
        "mw",
        "alerts",
    ]
