"""Distributions: reward beside the proxy's training activities, properties, diversity over training,
and a 2D chemical-space map."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from molgfn.dashboard import (
    PROPERTIES,
    PROPERTY_LABELS,
    RunStore,
    chemical_space,
    diversity_over_training,
    molecule_properties,
    proxy_summary,
    step_windows,
)
from molgfn.dashboard import ui as app_ui

MAX_SAMPLE = 2000  # molecules drawn for property histograms and the map (the best by reward first)

cfg = app_ui.page_setup("Distributions")
st.title("Distributions")

frame = app_ui.runs_table(cfg.runs_dir)
ids = app_ui.run_with_data(frame)
if not ids:
    st.info("No run has sampled molecules yet. Start one on the Train page.")
    st.stop()

c1, c2 = st.columns([3, 2])
with c1:
    run_id = app_ui.pick_run("Run", ids, key="dist_run")
store = app_ui.open_run(cfg.runs_dir, run_id)
last = app_ui.last_step(store)
with c2:
    if last > 1:
        lo, hi = st.slider(
            "Steps",
            1,
            last,
            (max(1, last - max(10, last // 5) + 1), last),
            key=f"dist_steps_{run_id}",
            help="samples from these training steps (default: the last fifth of training, at least 10 steps)",
        )
    else:
        lo, hi = 1, max(1, last)


@st.cache_data(show_spinner=False, max_entries=16)
def sample(run_path: str, last: int, lo: int, hi: int) -> pd.DataFrame:
    """Unique molecules of the window, at most MAX_SAMPLE (a fixed random subset), with properties."""
    mols = app_ui.load_molecules(run_path, last, lo, hi).drop_duplicates("smiles").reset_index(drop=True)
    if len(mols) > MAX_SAMPLE:
        mols = mols.sample(MAX_SAMPLE, random_state=0).reset_index(drop=True)
    return pd.concat([mols, molecule_properties(list(mols["smiles"]))], axis=1)


@st.cache_data(show_spinner=False, max_entries=16)
def reference_properties(proxy_path: str) -> pd.DataFrame:
    proxy = app_ui.load_proxy(proxy_path)
    smiles = list(proxy.train_smiles)
    labels = np.asarray(proxy.train_labels, dtype=float)
    if len(smiles) > MAX_SAMPLE:
        keep = np.sort(np.random.default_rng(0).choice(len(smiles), MAX_SAMPLE, replace=False))
        smiles, labels = [smiles[i] for i in keep], labels[keep]
    return pd.concat([pd.DataFrame({"smiles": smiles, "label": labels}), molecule_properties(smiles)], axis=1)


@st.cache_data(show_spinner=False, max_entries=16)
def space(run_path: str, last: int, lo: int, hi: int, proxy_path: str | None):
    mols = sample(run_path, last, lo, hi)
    ref = reference_properties(proxy_path)["smiles"].tolist() if proxy_path else []
    gen_xy, ref_xy, _ = chemical_space(list(mols["smiles"]), ref)
    return gen_xy, ref_xy


@st.cache_data(show_spinner=False, max_entries=16)
def diversity(run_path: str, last: int) -> pd.DataFrame:
    run = RunStore(run_path)
    return diversity_over_training(
        run.read_molecules(max_step=last, expand_components=False),
        run.read_steps(["trajectories"]),
        step_windows(last, 20),
        0.7,
    )


@st.cache_data(show_spinner=False, max_entries=16)
def predicted(run_path: str, last: int, lo: int, hi: int, proxy_path: str) -> np.ndarray:
    """The proxy's predicted activity of the sampled molecules (cached per window)."""
    smiles = sample(run_path, last, lo, hi)["smiles"].tolist()
    return (
        np.asarray(app_ui.load_proxy(proxy_path).predict(smiles)[0], dtype=float) if smiles else np.zeros(0)
    )


with st.spinner("Computing distributions…"):
    mols = sample(str(store.path), last, lo, hi)
proxy_path, proxy, problem = app_ui.run_proxy(store)
ref = reference_properties(str(proxy_path)) if proxy is not None else None

st.subheader("Reward and activity")
c1, c2 = st.columns(2)
fig = go.Figure(go.Histogram(x=mols["reward"], nbinsx=40, marker_color="#1f77b4", name="sampled"))
fig.update_layout(
    title=f"Reward of sampled molecules (steps {lo}–{hi}, {len(mols):,} unique)",
    template=app_ui.PLOT_TEMPLATE,
    xaxis_title="reward",
    yaxis_title="molecules",
    height=320,
    margin={"t": 40, "b": 40},
)
c1.plotly_chart(fig, key="reward_hist")
with c2:
    if ref is not None:
        # the same quantity on both sides: measured pK of the training set, predicted pK of the samples
        pk = predicted(str(store.path), last, lo, hi, str(proxy_path))
        fig = go.Figure()
        fig.add_histogram(
            x=ref["label"], histnorm="probability", nbinsx=40, marker_color="#7f7f7f", opacity=0.7,
            name=f"measured, training set ({len(ref):,})",
        )  # fmt: skip
        fig.add_histogram(
            x=pk, histnorm="probability", nbinsx=40, marker_color="#1f77b4", opacity=0.7,
            name=f"predicted, sampled ({len(pk):,})",
        )  # fmt: skip
        label = proxy.metadata.get("label_col") or proxy.metadata.get("label") or "activity"
        fig.update_layout(
            title="Activity: measured (training set) and predicted (sampled molecules)",
            template=app_ui.PLOT_TEMPLATE,
            barmode="overlay",
            xaxis_title=f"{label} (pK)",
            yaxis_title="fraction of molecules",
            height=320,
            margin={"t": 40, "b": 40},
            legend={"orientation": "h", "y": -0.25},
        )
        st.plotly_chart(fig, key="activity_hist")
        st.caption(f"Proxy: {app_ui.plain(proxy_summary(proxy))}")
    else:
        st.info(f"Activity distribution: n/a — {app_ui.plain(problem)}.")

st.subheader("Properties")
fig = make_subplots(rows=1, cols=len(PROPERTIES), subplot_titles=[PROPERTY_LABELS[p] for p in PROPERTIES])
for k, name in enumerate(PROPERTIES, start=1):
    fig.add_histogram(
        x=mols[name],
        histnorm="probability",
        name="sampled",
        marker_color="#1f77b4",
        opacity=0.7,
        showlegend=k == 1,
        row=1,
        col=k,
    )
    if ref is not None:
        fig.add_histogram(
            x=ref[name],
            histnorm="probability",
            name="training data",
            marker_color="#7f7f7f",
            opacity=0.6,
            showlegend=k == 1,
            row=1,
            col=k,
        )
    both = pd.concat([mols[name], ref[name]]) if ref is not None else mols[name]
    low, high = np.nanpercentile(both, [0.5, 99.5]) if both.notna().any() else (0.0, 1.0)
    pad = 0.05 * (high - low) or 0.5
    fig.update_xaxes(range=[low - pad, high + pad], row=1, col=k)  # outliers would squash the histogram
fig.update_layout(barmode="overlay", template=app_ui.PLOT_TEMPLATE, height=300, margin={"t": 40, "b": 30})
st.plotly_chart(fig, key="property_hist")

st.subheader("Diversity over training")
div = diversity(str(store.path), last)
fig = make_subplots(
    rows=1,
    cols=3,
    subplot_titles=["IntDiv1 per window", "Unique fraction per window", "Modes discovered (reward ≥ 0.7)"],
)
fig.add_scatter(x=div["trajectories"], y=div["intdiv"], mode="lines+markers", row=1, col=1, showlegend=False)
fig.add_scatter(
    x=div["trajectories"], y=div["unique_fraction"], mode="lines+markers", row=1, col=2, showlegend=False
)
fig.add_scatter(x=div["trajectories"], y=div["modes"], mode="lines+markers", row=1, col=3, showlegend=False)
fig.update_xaxes(title_text="trajectories sampled")
fig.update_layout(template=app_ui.PLOT_TEMPLATE, height=300, margin={"t": 40, "b": 40})
st.plotly_chart(fig, key="diversity_lines")

st.subheader("Chemical space")
st.caption(
    "PCA of Morgan fingerprints (radius 2, 1024 bits) of the sampled molecules"
    + (" and the proxy's training molecules (grey)" if ref is not None else "")
    + "; colour: reward."
)
with st.spinner("Projecting…"):
    gen_xy, ref_xy = space(str(store.path), last, lo, hi, str(proxy_path) if ref is not None else None)
fig = go.Figure()
if ref is not None and len(ref_xy):
    fig.add_scattergl(
        x=ref_xy[:, 0],
        y=ref_xy[:, 1],
        mode="markers",
        name="training data",
        marker={"color": "#bbbbbb", "size": 5},
        text=ref["smiles"],
        hoverinfo="text",
    )
fig.add_scattergl(
    x=gen_xy[:, 0],
    y=gen_xy[:, 1],
    mode="markers",
    name="sampled",
    marker={"color": mols["reward"], "colorscale": "Viridis", "size": 6, "colorbar": {"title": "reward"}},
    text=mols["smiles"],
    hoverinfo="text",
)
fig.update_layout(
    template=app_ui.PLOT_TEMPLATE,
    height=520,
    xaxis_title="PC 1",
    yaxis_title="PC 2",
    legend={"orientation": "h", "y": -0.12},
    margin={"t": 20},
)
st.plotly_chart(fig, key="space_map")
