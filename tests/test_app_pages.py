"""Every dashboard page renders (Streamlit AppTest) with no runs, with a finished run and with a failed
run; the Train form shows the config validation messages beside the fields; the export downloads parse."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from molgfn.cli import main as molgfn_main
from molgfn.training.runs import RunStore, list_runs

ROOT = Path(__file__).resolve().parents[1]
HOME = str(ROOT / "app" / "Home.py")
PAGES = [
    "pages/1_Train.py",
    "pages/2_Monitor.py",
    "pages/3_Molecules.py",
    "pages/4_Distributions.py",
    "pages/5_Generate.py",
    "pages/6_Campaigns.py",
]
FAILING_CONFIG = """
[run]
name = "broken"
[env]
vocab = "tiny"
max_frags = 3
[model]
hidden = 16
layers = 1
beta_embedding = 4
[train]
steps = 3
batch_size = 4
[reward]
[[reward.components]]
kind = "command"
name = "broken"
command = ["false"]
"""


def train_tiny(runs_dir: Path, *args: str) -> None:
    code = molgfn_main(
        [
            "train",
            "--config",
            str(ROOT / "configs" / "tiny.toml"),
            "--runs-dir",
            str(runs_dir),
            "--no-progress",
            *args,
        ]
    )
    assert code == 0


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory) -> Path:
    runs_dir = tmp_path_factory.mktemp("finished")
    train_tiny(runs_dir, "--set", "train.steps=3", "--run-id", "tiny-done")
    return runs_dir


@pytest.fixture(scope="module")
def proxy_runs(tmp_path_factory) -> Path:
    """A finished run whose reward uses the shipped proxy (novelty, neighbours, activity histogram)."""
    from molgfn.proxy import DEFAULT_PROXY

    runs_dir = tmp_path_factory.mktemp("proxy")
    components = f'[{{kind="qed"}}, {{name="activity", kind="proxy", path="{DEFAULT_PROXY}", transform={{kind="sigmoid", low=5.0, high=9.0}}}}]'
    train_tiny(
        runs_dir,
        "--set",
        "train.steps=3",
        "--run-id",
        "with-proxy",
        "--set",
        f"reward.components={components}",
    )
    return runs_dir


@pytest.fixture(scope="module")
def failed_runs(tmp_path_factory) -> Path:
    """A run that failed through the trainer's real failure path (its reward command exits 1)."""
    runs_dir = tmp_path_factory.mktemp("failed")
    config = runs_dir.parent / "broken.toml"
    config.write_text(FAILING_CONFIG, encoding="utf-8")
    code = molgfn_main(
        ["train", "--config", str(config), "--runs-dir", str(runs_dir), "--run-id", "broken", "--no-progress"]
    )
    assert code == 1
    assert RunStore.open("broken", runs_dir).status()["status"] == "failed"
    return runs_dir


@pytest.fixture
def empty_runs(tmp_path) -> Path:
    return tmp_path / "runs"


def app(runs_dir: Path, monkeypatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("MOLGFN_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(HOME, default_timeout=120)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("page", [None, *PAGES])
def test_every_page_renders_with_no_runs(page, empty_runs, monkeypatch):
    at = app(empty_runs, monkeypatch, page)
    assert_clean(at)
    if page is None:
        assert any("No runs yet" in i.value for i in at.info)


@pytest.mark.parametrize("page", [None, *PAGES])
def test_every_page_renders_with_a_finished_run(page, finished_runs, monkeypatch):
    at = app(finished_runs, monkeypatch, page)
    assert_clean(at)
    if page is None:
        table = at.dataframe[0].value
        assert list(table["id"]) == ["tiny-done"] and list(table["status"]) == ["finished"]


@pytest.mark.parametrize("page", [None, *PAGES])
def test_every_page_renders_with_a_failed_run(page, failed_runs, monkeypatch):
    at = app(failed_runs, monkeypatch, page)
    assert_clean(at)
    if page == "pages/1_Train.py":
        assert any("exited with status 1" in e.value for e in at.error), [e.value for e in at.error]
        assert any("Traceback" in c.value for c in at.code)


def test_molecules_page_shows_a_grid_table_and_detail(finished_runs, monkeypatch):
    at = app(finished_runs, monkeypatch, "pages/3_Molecules.py")
    assert_clean(at)
    assert len(at.image) >= 1
    details = [b for b in at.button if b.label == "Details"]
    assert details
    details[0].click().run()
    assert_clean(at)
    assert any("Fragments" in m.value for m in at.markdown)  # in the detail dialog
    detail = next(d.value for d in at.dataframe if "property" in d.value)
    assert {
        "QED",
        "TPSA (Å²)",
        "HBD",
        "HBA",
        "alerts (PAINS, Brenk, NIH)",
        "structural alerts (PAINS, Brenk, NIH)",
    } <= set(detail["property"])
    at.segmented_control(key="view_mode").set_value("Table").run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert {"smiles", "reward", "step", "samples"} <= set(table.columns) and table["smiles"].is_unique
    assert list(table["reward"]) == sorted(table["reward"], reverse=True)


def test_molecules_and_distributions_use_the_runs_proxy(proxy_runs, monkeypatch):
    at = app(proxy_runs, monkeypatch, "pages/3_Molecules.py")
    assert_clean(at)
    assert at.radio(key="f_novel").options == ["all", "novel", "known"]
    next(b for b in at.button if b.label == "Details").click().run()
    assert_clean(at)
    assert any("Tanimoto" in c.value for c in at.caption)
    at.radio(key="f_novel").set_value("known").run()
    assert_clean(at)
    at = app(proxy_runs, monkeypatch, "pages/4_Distributions.py")
    assert_clean(at)
    assert not any("n/a" in i.value for i in at.info)
    # measured pK of the training set beside the predicted pK of the samples, with the proxy's metrics
    chart = next(c for c in at.get("plotly_chart") if "activity_hist" in c.proto.id)
    names = [trace["name"] for trace in json.loads(chart.proto.spec)["data"]]
    assert names[0].startswith("measured, training set") and names[1].startswith("predicted, sampled")
    assert any(c.value.startswith("Proxy: ") and "test RMSE" in c.value for c in at.caption)


def test_molecules_page_reports_an_invalid_smarts(finished_runs, monkeypatch):
    at = app(finished_runs, monkeypatch, "pages/3_Molecules.py")
    at.text_input(key="smarts").input("c1ccc(").run()
    assert_clean(at)
    assert any("not a valid SMARTS" in e.value for e in at.error)
    at.text_input(key="smarts").input("c1ccccc1").run()
    assert_clean(at)
    assert not any("SMARTS" in e.value for e in at.error)


def train_page(runs_dir: Path, monkeypatch, template: str = "tiny") -> AppTest:
    """The Train page on a starting point (tiny by default: its runs train in seconds)."""
    at = app(runs_dir, monkeypatch, "pages/1_Train.py")
    if template != at.selectbox(key="template").value:
        at.selectbox(key="template").select(template).run()
    return at


def test_the_train_form_starts_from_the_shipped_default_and_a_switch_sets_every_field(
    empty_runs, monkeypatch
):
    from molgfn.dashboard import config_template

    at = app(empty_runs, monkeypatch, "pages/1_Train.py")
    assert at.selectbox(key="template").value == "default"

    def shown() -> dict:
        return {
            "run.name": at.text_input(key="run_name").value,
            "objective.name": at.selectbox(key="objective").value,
            "train.steps": at.number_input(key="steps").value,
            "train.batch_size": at.number_input(key="batch_size").value,
            "train.beta_min": at.number_input(key="beta_min").value,
            "train.beta_max": at.number_input(key="beta_max").value,
            "env.max_frags": at.number_input(key="max_frags").value,
            "run.seed": at.number_input(key="seed").value,
        }

    def expected(name: str) -> dict:
        data = config_template(name)
        return {
            "run.name": data["run"]["name"],
            "objective.name": data["objective"]["name"],
            "train.steps": data["train"]["steps"],
            "train.batch_size": data["train"]["batch_size"],
            "train.beta_min": data["train"]["beta_min"],
            "train.beta_max": data["train"]["beta_max"],
            "env.max_frags": data["env"]["max_frags"],
            "run.seed": data["run"].get("seed", 0),
        }

    assert shown() == expected("default")
    assert expected("default") != expected("tiny")  # the two really differ
    at.text_input(key="run_name").input("mine").run()
    at.number_input(key="max_frags").set_value(3).run()
    at.selectbox(key="template").select("tiny").run()
    assert_clean(at)
    assert shown() == expected("tiny")
    weights = {w.label: w.value for w in at.number_input if w.key.startswith("weight_")}
    at.selectbox(key="template").select("default").run()
    assert shown() == expected("default")  # nothing of tiny (or of the edits) is left
    assert {w.label: w.value for w in at.number_input if w.key.startswith("weight_")} != weights


def test_train_form_shows_batch_size_message_beside_the_field(empty_runs, monkeypatch):
    at = train_page(empty_runs, monkeypatch)
    at.number_input(key="batch_size").set_value(0)
    at.button(key="launch").click().run()
    assert_clean(at)
    assert [e.value for e in at.error] == ["must be >= 1 (got 0)"]
    assert not list_runs(empty_runs).shape[0]


def test_train_form_reports_every_wrong_field(empty_runs, monkeypatch):
    at = train_page(empty_runs, monkeypatch)
    at.number_input(key="steps").set_value(0)
    at.number_input(key="max_frags").set_value(50)
    at.button(key="launch").click().run()
    messages = sorted(e.value for e in at.error)
    assert messages == ["must be <= 20 (got 50)", "must be >= 1 (got 0)"]


def test_train_form_rejects_beta_min_above_beta_max(empty_runs, monkeypatch):
    at = train_page(empty_runs, monkeypatch)
    at.number_input(key="beta_min").set_value(9.0)
    at.number_input(key="beta_max").set_value(2.0)
    at.button(key="launch").click().run()
    assert [e.value for e in at.error] == ["must be <= train.beta_max (got 9 > 2)"]


def test_train_form_rejects_a_negative_reward_weight(empty_runs, monkeypatch):
    at = train_page(empty_runs, monkeypatch)
    at.number_input(key="weight_qed").set_value(-1.0)
    at.button(key="launch").click().run()
    assert len(at.error) == 1 and "must be >= 0" in at.error[0].value


def test_train_form_rejects_a_bad_run_name(empty_runs, monkeypatch):
    at = train_page(empty_runs, monkeypatch)
    at.text_input(key="run_name").input("../escape").run()
    at.button(key="launch").click().run()
    assert len(at.error) == 1 and "letters, digits" in at.error[0].value
    assert not empty_runs.exists() or not any(p.name != ".dashboard" for p in empty_runs.iterdir())


def test_generate_page_downloads_parse(finished_runs, monkeypatch):
    pytest.importorskip("molgfn.candidates.generate", reason="molgfn.candidates.generate is not merged yet")
    pytest.importorskip("molgfn.candidates.export", reason="molgfn.candidates.export is not merged yet")
    import molgfn.dashboard.exports

    served: dict[str, bytes] = {}  # what the page hands to each download button
    real_export_bytes = molgfn.dashboard.exports.export_bytes

    def recording_export_bytes(table, fmt):
        served[fmt] = real_export_bytes(table, fmt)
        return served[fmt]

    monkeypatch.setattr(molgfn.dashboard.exports, "export_bytes", recording_export_bytes)
    at = app(finished_runs, monkeypatch, "pages/5_Generate.py")
    assert_clean(at)
    at.selectbox(key="gen_source").select("tiny-done")
    at.number_input(key="gen_n").set_value(20)
    at.button(key="generate").click().run()
    assert_clean(at)
    assert sorted(b.label for b in at.download_button) == ["Download CSV", "Download SDF", "Download SMI"]
    csv = pd.read_csv(io.BytesIO(served["csv"]))
    assert len(csv) >= 1 and {"smiles", "reward", "qed", "sa", "mw"} <= set(csv.columns)
    assert csv["smiles"].is_unique  # "Unique" is on by default
    smi = served["smi"].decode().splitlines()
    assert len(smi) == len(csv) and smi[0].split("\t")[0] == csv["smiles"][0]
    assert served["sdf"].decode().count("$$$$") == len(csv)
    # best first, each molecule with its stable id (also the SDF title and the SMI name)
    assert csv["reward"].is_monotonic_decreasing and csv["id"].str.fullmatch(r"MG-[0-9A-F]{10}").all()
    assert served["sdf"].decode().splitlines()[0] == csv["id"][0] and smi[0].split("\t")[1] == csv["id"][0]
    # 20 unique molecules cost a whole batch of trajectories: the page says why
    caption = " ".join(c.value for c in at.caption)
    assert "trajectories sampled for 20 molecules" in caption and "batches of up to 256" in caption


def test_runs_dir_comes_from_the_environment(finished_runs, monkeypatch):
    at = app(finished_runs, monkeypatch)
    assert str(finished_runs) in at.sidebar.caption[0].value
    assert os.environ["MOLGFN_RUNS_DIR"] == str(finished_runs)


def test_generate_page_offers_the_shipped_generator_when_present(empty_runs, monkeypatch):
    from molgfn.candidates.generate import DEFAULT_GENERATOR

    at = app(empty_runs, monkeypatch, "pages/5_Generate.py")
    assert_clean(at)
    if not Path(DEFAULT_GENERATOR).exists():
        assert any("Nothing to generate from" in i.value for i in at.info)
        pytest.skip(f"{DEFAULT_GENERATOR} is not shipped in this checkout")
    assert at.selectbox(key="gen_source").value == "shipped"
    at.number_input(key="gen_n").set_value(5)
    at.button(key="generate").click().run()
    assert_clean(at)
    assert [b.label for b in at.download_button] == ["Download CSV", "Download SDF", "Download SMI"]
    # the shipped generator's reward has a proxy: predicted pK with its spread, and the domain warning
    cards = [c.value for c in at.caption if c.value.startswith("reward ")]
    assert len(cards) == 5 and all(re.search(r"pK \d+\.\d ± \d+\.\d", c) for c in cards)
    summary = [c.value for c in at.caption if "applicability domain" in c.value]
    assert len(summary) == 1 and summary[0].split(" of ")[1].startswith("5 molecules")
    outside = int(summary[0].split(" of ")[0].replace(",", ""))
    assert sum("⚠ outside domain" in c for c in cards) == outside


def test_stop_and_resume_from_the_train_page(tmp_path, monkeypatch):
    """Stop (the UI button) leaves a checkpoint; Resume continues from it to the end."""
    import time

    from molgfn import dashboard
    from molgfn.config import load_config

    runs_dir = tmp_path / "runs"
    cfg = load_config(ROOT / "configs" / "tiny.toml", ["train.steps=100000", "train.checkpoint_every=1000"])
    dashboard.submit_run(cfg, runs_dir, run_id="ui-stop")
    store = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if (runs_dir / "ui-stop" / "status.json").exists():
            store = RunStore.open("ui-stop", runs_dir)
            if store.status()["status"] == "running" and store.summary()["step"] >= 2:
                break
        time.sleep(0.2)
    try:
        at = app(runs_dir, monkeypatch, "pages/1_Train.py")
        at.button(key="stop_ui-stop").click().run()
        assert_clean(at)
        deadline = time.monotonic() + 60
        while store.status()["status"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.2)
        status = store.status()
        assert status["status"] == "stopped"
        assert store.checkpoints() and store.checkpoints()[-1][0] == status["step"]
        stopped_at = status["step"]
        at.run()
        at.button(key="resume_ui-stop").click().run()
        assert_clean(at)
        deadline = time.monotonic() + 60
        while not (store.status()["status"] == "running" and store.summary()["step"] > stopped_at):
            assert time.monotonic() < deadline, "the run did not resume"
            time.sleep(0.2)
        assert store.read_steps(["loss"])["step"].is_unique  # no step recorded twice
    finally:
        if store is not None and store.status()["status"] == "running":
            store.request_stop()


def test_an_upload_over_the_limit_is_refused_with_a_message(empty_runs, monkeypatch):
    monkeypatch.setenv("MOLGFN_MAX_UPLOAD_MB", "0.001")  # 1,048 bytes
    at = app(empty_runs, monkeypatch, "pages/1_Train.py")
    at.radio(key="target").set_value("upload").run()
    big = b"smiles,pK\n" + b"CCO,5.0\n" * 700
    at.file_uploader(key="upload").set_value(("../../big table.csv", big, "text/csv")).run()
    assert_clean(at)
    assert any("over the upload limit" in e.value for e in at.error)
    at.button(key="launch").click().run()
    assert any("over the upload limit" in e.value for e in at.error)
    uploads = empty_runs / ".dashboard" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_train_form_offers_the_ray_backend_and_checks_its_address(empty_runs, monkeypatch):
    at = train_page(empty_runs, monkeypatch)
    assert at.selectbox(key="backend").options == ["local", "ray"]
    assert at.text_input(key="ray_address").disabled
    at.selectbox(key="backend").select("ray").run()
    assert not at.text_input(key="ray_address").disabled
    at.text_input(key="ray_address").input("head node").run()
    at.button(key="launch").click().run()
    assert_clean(at)
    assert len(at.error) == 1 and "HOST:PORT" in at.error[0].value, [e.value for e in at.error]
    assert not list_runs(empty_runs).shape[0]


def test_an_uploaded_table_is_stored_inside_the_runs_dir_and_queues_a_run(empty_runs, monkeypatch):
    from molgfn import dashboard

    lines = (ROOT / "data" / "targets" / "CHEMBL244_Ki.csv").read_text().splitlines()[:121]
    at = app(empty_runs, monkeypatch, "pages/1_Train.py")
    at.radio(key="target").set_value("upload").run()
    at.file_uploader(key="upload").set_value(
        ("../../../etc/fxa.csv", "\n".join(lines).encode(), "text/csv")
    ).run()
    at.button(key="launch").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    (stored,) = (empty_runs / ".dashboard" / "uploads").iterdir()
    assert stored.name.endswith("-fxa.csv") and stored.read_text().splitlines()[:121] == lines
    (queued,) = dashboard.read_queue(empty_runs)
    assert queued["requires"].endswith(".proxy.pt")
    assert not (empty_runs.parent / "etc").exists()


def test_shipped_targets_are_listed_by_target_name_measure_and_size(empty_runs, monkeypatch):
    at = app(empty_runs, monkeypatch, "pages/1_Train.py")
    at.radio(key="target").set_value("table").run()
    assert_clean(at)
    box = at.selectbox(key="target_table")
    assert "Coagulation factor X (F10) · Ki · 3097 molecules (CHEMBL244)" in box.options
    assert "Dopamine D3 receptor (DRD3) · Ki · 3657 molecules (CHEMBL234)" in box.options
    assert box.options == sorted(box.options, key=str.lower)  # by name, not by ChEMBL id
    assert len(box.options) == len(list((ROOT / "data" / "targets").glob("*.csv")))


def test_a_shortlist_is_collected_across_pages_and_downloaded(proxy_runs, monkeypatch):
    import molgfn.dashboard.exports

    served = {}
    real_export_bytes = molgfn.dashboard.exports.export_bytes

    def recording_export_bytes(table, fmt):
        served[fmt] = real_export_bytes(table, fmt)
        return served[fmt]

    monkeypatch.setattr(molgfn.dashboard.exports, "export_bytes", recording_export_bytes)
    at = app(proxy_runs, monkeypatch, "pages/3_Molecules.py")
    assert_clean(at)
    boxes = [c for c in at.checkbox if c.label == "Shortlist"]
    assert len(boxes) >= 2 and not any(b.value for b in boxes)
    chosen = [b.key.split("_", 2)[2] for b in boxes[:2]]  # short_<run>_<smiles>
    boxes[0].check().run()
    next(c for c in at.checkbox if c.key == boxes[1].key).check().run()
    assert_clean(at)
    assert any(e.label == "Shortlist (2)" for e in at.expander)
    csv = pd.read_csv(io.BytesIO(served["csv"]))
    assert csv["smiles"].tolist() == chosen
    # the export columns, with the run's reward, predicted pK, spread and the applicability flag
    assert {
        "id",
        "reward",
        "proxy_mean",
        "proxy_std",
        "nearest_train_similarity",
        "in_domain",
        "step",
    } <= set(csv)
    assert served["sdf"].decode().count("$$$$") == 2 and len(served["smi"].decode().splitlines()) == 2
    # unticking removes it again
    next(c for c in at.checkbox if c.key == boxes[0].key).uncheck().run()
    assert any(e.label == "Shortlist (1)" for e in at.expander)


def test_molecules_can_be_filtered_and_sorted_by_tpsa_and_h_bond_counts(proxy_runs, monkeypatch):
    at = app(proxy_runs, monkeypatch, "pages/3_Molecules.py")
    at.toggle(key="props_all_with-proxy").set_value(True).run()
    assert_clean(at)
    labels = [s.label for s in at.sidebar.slider]
    assert {"TPSA (Å²)", "HBD", "HBA"} <= set(labels)
    assert {"tpsa", "hbd", "hba"} <= set(at.selectbox(key="sort_by").options)
    at.selectbox(key="sort_by").select("tpsa").run()
    assert_clean(at)


def test_molecules_show_predicted_pk_with_its_spread_sortable_with_the_domain_badge(proxy_runs, monkeypatch):
    at = app(proxy_runs, monkeypatch, "pages/3_Molecules.py")
    assert_clean(at)
    cards = [c.value for c in at.caption if c.value.startswith("pK ")]
    assert cards and all(
        re.fullmatch(r"pK \*\*\d+\.\d\*\* ± \d+\.\d( · ⚠ outside domain)?", c) for c in cards
    )
    assert at.selectbox(key="sort_by").options[:3] == ["reward", "proxy_mean", "proxy_std"]
    at.selectbox(key="sort_by").select("proxy_mean").run()
    assert_clean(at)
    shown = [
        float(re.search(r"\*\*(\d+\.\d)\*\*", c.value).group(1))
        for c in at.caption
        if c.value.startswith("pK ")
    ]
    assert shown == sorted(shown, reverse=True)  # best predicted activity first
    total = int(at.metric[0].value.split(" of ")[1].replace(",", ""))
    outside = sum("outside domain" in c.value for c in at.caption if c.value.startswith("pK "))
    at.radio(key="f_domain").set_value("outside").run()
    assert_clean(at)
    n_outside = int(at.metric[0].value.split(" of ")[0].replace(",", ""))
    at.radio(key="f_domain").set_value("inside").run()
    n_inside = int(at.metric[0].value.split(" of ")[0].replace(",", ""))
    assert n_inside + n_outside == total and n_outside >= outside
    assert {"Predicted pK"} <= {s.label for s in at.sidebar.slider}


@pytest.fixture(scope="module")
def alert_runs(tmp_path_factory) -> Path:
    """A tiny run whose reward has the alerts gate: the run records every property, alerts included."""
    runs_dir = tmp_path_factory.mktemp("alerts")
    components = '[{kind="qed"}, {kind="alerts", multiply=true, transform={kind="step", threshold=0.0, direction="below"}}]'
    train_tiny(
        runs_dir, "--set", "train.steps=4", "--run-id", "gated", "--set", f"reward.components={components}"
    )
    return runs_dir


def test_a_run_records_each_molecules_properties_as_rdkit_computes_them(alert_runs):
    from rdkit import Chem
    from rdkit.Chem import QED, FilterCatalog, rdMolDescriptors

    store = RunStore.open("gated", alert_runs)
    recorded = store.read_properties().set_index("smiles")
    sampled = set(store.read_molecules()["smiles"])
    assert set(recorded.index) == sampled and set(recorded.columns) == {
        "qed", "sa", "mw", "logp", "tpsa", "hbd", "hba", "alerts",
    }  # fmt: skip
    params = FilterCatalog.FilterCatalogParams()
    for which in ("PAINS", "BRENK", "NIH"):
        params.AddCatalog(getattr(FilterCatalog.FilterCatalogParams.FilterCatalogs, which))
    catalog = FilterCatalog.FilterCatalog(params)
    for smiles, row in recorded.iterrows():
        mol = Chem.MolFromSmiles(smiles)
        assert row["qed"] == pytest.approx(QED.qed(mol), abs=1e-9)
        assert row["tpsa"] == pytest.approx(rdMolDescriptors.CalcTPSA(mol), abs=1e-9)
        assert row["hbd"] == rdMolDescriptors.CalcNumLipinskiHBD(mol)
        assert row["hba"] == rdMolDescriptors.CalcNumLipinskiHBA(mol)
        assert row["alerts"] == len(catalog.GetMatches(mol))
    assert (recorded["alerts"] == 0).any() and (recorded["alerts"] > 0).any()


def test_molecules_filter_on_alerts_with_the_recorded_properties(alert_runs, monkeypatch):
    import molgfn.reward.properties

    def no_computing(*args, **kwargs):
        raise AssertionError("the page computed properties the run had recorded")

    monkeypatch.setattr(molgfn.reward.properties, "compute_properties", no_computing)
    recorded = RunStore.open("gated", alert_runs).read_properties()
    at = app(alert_runs, monkeypatch, "pages/3_Molecules.py")
    assert_clean(at)
    assert at.toggle(key="props_all_gated").value  # on by default: nothing to compute
    total = int(at.metric[0].value.split(" of ")[1].replace(",", ""))
    assert total == len(recorded)
    flagged = [c.value for c in at.caption if "⚠" in c.value and "alert" in c.value]
    assert flagged  # cards of molecules with alerts say so
    slider = next(s for s in at.sidebar.slider if s.label == "alerts (PAINS, Brenk, NIH)")
    slider.set_value((0.0, 0.0)).run()
    assert_clean(at)
    shown = int(at.metric[0].value.split(" of ")[0].replace(",", ""))
    assert shown == int((recorded["alerts"] == 0).sum()) < total
    assert not any("alert" in c.value and "⚠" in c.value for c in at.caption)
