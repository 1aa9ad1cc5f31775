"""Streamlit glue shared by the dashboard pages (``app/``): settings, cached loaders, run pickers.

Only presentation and caching live here; every computation is a call into the package
(:mod:`molgfn.training.runs`, :mod:`molgfn.dashboard.launch`, :mod:`molgfn.dashboard.explore`, :mod:`molgfn.dashboard.drawing`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from molgfn.dashboard.forms import run_proxy_path
from molgfn.dashboard.launch import dashboard_runs, pump_queue
from molgfn.dashboard.settings import Settings
from molgfn.errors import MolgfnError
from molgfn.training.runs import RunStore

STATUS_LABELS = {"created": "starting"}  # a run folder whose trainer has not started its first step
PLOT_TEMPLATE = "plotly_white"


def settings() -> Settings:
    """The dashboard settings (environment variables set by ``molgfn app``)."""
    return Settings.from_env()


def page_setup(title: str, icon: str = "🧪") -> Settings:
    """Page config, the sidebar's settings line, and a queue check (starts queued runs when a slot is free).

    The icon is an emoji: Streamlit draws it into an inline SVG, where a ``:material/…:`` page icon would
    make every browser fetch the favicon from fonts.gstatic.com (the dashboard loads nothing from the
    internet; the browser test checks every request)."""
    st.set_page_config(page_title=f"molgfn · {title}", page_icon=icon, layout="wide")
    cfg = settings()
    try:
        pump_queue(cfg.runs_dir, cfg.max_concurrent)
    except (OSError, MolgfnError) as exc:
        st.sidebar.warning(f"queue: {exc}")
    st.sidebar.caption(
        f"Runs folder: `{cfg.runs_dir}`  \nAt most {cfg.max_concurrent} runs train at once (more are queued); "
        f"uploads up to {cfg.max_upload_mb:g} MB."
    )
    return cfg


def runs_table(runs_dir: Path) -> pd.DataFrame:
    """Every run (store, queue, starting), newest first; not cached: statuses change."""
    return dashboard_runs(runs_dir)


_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def plain(text: object) -> str:
    """``text`` as literal text inside Streamlit Markdown (st.markdown, st.error, st.caption, st.toast...):
    every ASCII punctuation character backslash-escaped, so a run name, message, file name or SMILES
    never becomes a link, an image, HTML, a colour directive or formatting."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def molecule_caption(row: Any) -> str:
    """A card's caption: reward, predicted pK ± the proxy's spread, and a warning when the molecule is
    outside the proxy's applicability domain (``docs/export.md``)."""
    parts = []
    if "reward" in row and pd.notna(row["reward"]):
        parts.append(f"reward {row['reward']:.3f}")
    if "proxy_mean" in row and pd.notna(row["proxy_mean"]):
        spread = f" ± {row['proxy_std']:.1f}" if pd.notna(row.get("proxy_std")) else ""
        parts.append(f"pK {row['proxy_mean']:.1f}{spread}")
    if "in_domain" in row and not bool(row["in_domain"]):
        parts.append("⚠ outside domain")
    return " · ".join(parts) or plain(row["smiles"])


def domain_summary(table: pd.DataFrame) -> str | None:
    """One line on how many molecules lie outside the proxy's applicability domain, or None."""
    if "in_domain" not in table or table.empty:
        return None
    outside = int((~table["in_domain"].astype(bool)).sum())
    return (
        f"{outside:,} of {len(table):,} molecules are outside the proxy's applicability domain (nearest training "
        "molecule Tanimoto < 0.4 or spread > 1.0 pK): their predicted pK are extrapolations, a ranking to test "
        "rather than affinities."
    )


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "unknown", status or "unknown")


def run_with_data(frame: pd.DataFrame) -> list[str]:
    """Ids of runs that have a run folder with steps (something to plot or browse)."""
    mask = frame["status"].isin(["running", "finished", "stopped", "failed", "interrupted"]) & (
        frame["step"].fillna(0) > 0
    )
    return list(frame.loc[mask, "id"])


def pick_run(label: str, ids: list[str], key: str) -> str | None:
    """A run picker remembering its choice across pages (``st.session_state["run"]``)."""
    if not ids:
        return None
    current = st.session_state.get("run")
    index = ids.index(current) if current in ids else 0
    choice = st.selectbox(label, ids, index=index, key=key)
    st.session_state["run"] = choice
    return choice


def open_run(runs_dir: Path, run_id: str) -> RunStore:
    return RunStore.open(run_id, runs_dir)


@st.cache_data(show_spinner=False, max_entries=32)
def load_molecules(
    run_path: str, last_step: int, min_step: int | None = None, max_step: int | None = None
) -> pd.DataFrame:
    """The molecules of a run (step window), cached per run and last step written; reward components
    are named ``<name>_desirability`` (as in exports; their values are the transformed scores)."""
    frame = RunStore(Path(run_path)).read_molecules(min_step=min_step, max_step=max_step)
    fixed = {"step", "smiles", "reward"}
    return frame.rename(columns={c: f"{c}_desirability" for c in frame.columns if c not in fixed})


@st.cache_data(show_spinner=False, max_entries=8)
def load_properties(run_path: str, last_step: int) -> pd.DataFrame:
    """The properties the run recorded per molecule (QED, SA, MW, logP, TPSA, HBD, HBA, alerts), cached per run
    and last step; none for a run made before they were recorded."""
    return RunStore(Path(run_path)).read_properties()


@st.cache_data(show_spinner=False, max_entries=32)
def load_steps(run_path: str, last_step: int) -> pd.DataFrame:
    return RunStore(Path(run_path)).read_steps()


@st.cache_resource(show_spinner=False, max_entries=4)
def load_proxy(path: str) -> Any:
    from molgfn.proxy import Proxy

    return Proxy.load(path)


@st.cache_resource(show_spinner=False, max_entries=4)
def reference_set(path: str) -> Any:
    """The proxy's training molecules as a :class:`molgfn.candidates.reference.ReferenceSet`."""
    from molgfn.candidates.reference import ReferenceSet

    return ReferenceSet(load_proxy(path).train_smiles)


def run_proxy(store: RunStore) -> tuple[Path | None, Any, str | None]:
    """(proxy path, Proxy or None, problem) of a run's reward."""
    path = run_proxy_path(store)
    if path is None:
        return None, None, "this run's reward has no proxy, so there is no training set to compare with"
    try:
        return path, load_proxy(str(path)), None
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable proxy is shown, not fatal
        return path, None, f"cannot load the proxy {path}: {exc}"


def last_step(store: RunStore) -> int:
    try:
        return int(store.summary()["step"] or 0)
    except Exception:  # noqa: BLE001 - a run folder whose database is not created yet
        return 0
