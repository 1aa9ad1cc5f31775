"""How fast the Molecules page becomes interactive on a run with 10,000 sampled molecules.

Builds a run folder whose molecules table holds 10,000 drug-sized molecules (real ChEMBL SMILES from
data/targets, 100 steps of 100, with reward and component columns, and the properties a training run
records for each molecule: QED, SA, MW, logP, TPSA, HBD, HBA and alerts), then times the Molecules page
with its property filters on (they are on by default when the run recorded the properties):

- AppTest: a fresh AppTest session runs Home, switches to Molecules and runs it; the time of that second
  run (cold caches each repeat: the Streamlit caches are cleared) is the server-side time to render;
- Chromium (if /usr/bin/chromium exists): `molgfn app` is started, and two times are measured until
  the grid's 24th "Details" button is visible and the app is idle: a fresh page load of /Molecules (this
  includes Streamlit's own frontend start-up, ~1.5-2 s on a slow machine) and an in-app navigation
  (clicking Molecules in the sidebar from Home, what a user does).

Prints the median of several repeats of each.

    python benchmarks/app_bench.py [--repeats 5] [--molecules 10000] [--no-browser]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molgfn.chem.molecules import MolBatch  # noqa: E402
from molgfn.config import load_config  # noqa: E402
from molgfn.reward.properties import RUN_PROPERTIES, compute_properties  # noqa: E402
from molgfn.training.runs import RunStore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def make_run(runs_dir: Path, n_molecules: int, per_step: int = 100) -> RunStore:
    """A finished run with ``n_molecules`` real drug-sized molecules in its molecules table."""
    smiles: list[str] = []
    for path in sorted((ROOT / "data" / "targets").glob("*.csv")):
        smiles += pd.read_csv(path)["smiles"].tolist()
        if len(smiles) >= n_molecules:
            break
    smiles = smiles[:n_molecules]
    rng = np.random.default_rng(0)
    cfg = load_config(ROOT / "configs" / "tiny.toml", [f"train.steps={n_molecules // per_step}"])
    store = RunStore.create(cfg, run_id="bench-10k", runs_dir=runs_dir)
    for step in range(1, n_molecules // per_step + 1):
        batch = smiles[(step - 1) * per_step : step * per_step]
        qed = rng.uniform(0, 1, len(batch))
        mw = rng.uniform(0, 1, len(batch))
        reward = np.sqrt(qed * mw)
        store.write_step(
            step,
            step * per_step,
            step * 0.5,
            {"loss": float(rng.normal()), "log_z": 0.1 * step, "reward_mean": float(reward.mean())},
            batch,
            reward,
            {"qed": qed, "mw": mw},
            compute_properties(MolBatch.parse(batch), RUN_PROPERTIES),  # what training records
        )
    store.set_status("finished", step=n_molecules // per_step, steps=n_molecules // per_step)
    store.close()
    return store


def apptest_seconds(runs_dir: Path, repeats: int) -> list[float]:
    from streamlit.testing.v1 import AppTest

    os.environ["MOLGFN_RUNS_DIR"] = str(runs_dir)
    times = []
    for _ in range(repeats):
        import streamlit as st

        from molgfn.dashboard import drawing

        st.cache_data.clear()
        st.cache_resource.clear()
        drawing.mol_svg.cache_clear()  # the SVGs are drawn again
        drawing._parse.cache_clear()
        at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=120)
        at.run()
        at.switch_page("pages/3_Molecules.py")
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(at.exception[0].value)
        assert len(at.button) >= 24, "the grid did not render"
        labels = {x.label for x in at.sidebar.slider}
        assert {"QED", "TPSA (Å²)", "HBD", "HBA", "alerts (PAINS, Brenk, NIH)"} <= labels, (
            "no property filters"
        )
    return times


def browser_seconds(runs_dir: Path, repeats: int) -> tuple[list[float], list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "molgfn", "app", "--port", str(port), "--runs-dir", str(runs_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    times, nav_times, home_times = [], [], []
    idle = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            page.close()
            for i in range(repeats + 1):  # the first load warms the server's module imports; not counted
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/Molecules")
                page.get_by_role("button", name="Details").nth(23).wait_for(state="visible", timeout=60000)
                page.wait_for_function(idle, timeout=60000)
                elapsed = time.perf_counter() - start
                if i:
                    times.append(elapsed)
                page.close()
            for _ in range(repeats):  # baseline: a fresh load of Home (Streamlit's own start-up)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_text("Quick actions").wait_for(timeout=60000)
                page.wait_for_function(idle, timeout=60000)
                home_times.append(time.perf_counter() - start)
                page.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            for _ in range(repeats):
                page.locator('[data-testid="stSidebarNav"] a', has_text="Home").click()
                page.get_by_text("Quick actions").wait_for(timeout=60000)
                page.wait_for_function(idle, timeout=60000)
                start = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a', has_text="Molecules").click()
                page.get_by_role("button", name="Details").nth(23).wait_for(state="visible", timeout=60000)
                page.wait_for_function(idle, timeout=60000)
                nav_times.append(time.perf_counter() - start)
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    return times, nav_times, home_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--molecules", type=int, default=10_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="molgfn-app-bench-") as tmp:
        runs_dir = Path(tmp)
        t = time.perf_counter()
        make_run(runs_dir, args.molecules)
        print(f"run with {args.molecules:,} molecules built in {time.perf_counter() - t:.1f} s")
        times = apptest_seconds(runs_dir, args.repeats)
        print(
            f"AppTest, Molecules page run (cold caches): median {statistics.median(times):.2f} s  {[round(x, 2) for x in times]}"
        )
        if not args.no_browser and Path(CHROMIUM).exists():
            times, nav_times, home_times = browser_seconds(runs_dir, args.repeats)
            for label, values in (
                ("fresh page load of Molecules until its grid is interactive", times),
                ("in-app navigation from Home to an interactive Molecules grid", nav_times),
                ("baseline: fresh page load of Home until interactive", home_times),
            ):
                print(
                    f"Chromium, {label}: median {statistics.median(values):.2f} s  "
                    f"{[round(x, 2) for x in values]}"
                )


if __name__ == "__main__":
    main()
