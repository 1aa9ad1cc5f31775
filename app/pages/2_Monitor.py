"""Monitor: training curves of one or several runs against trajectories sampled, live."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from molgfn.dashboard import RunStore, diversity_over_training, step_windows
from molgfn.dashboard import ui as app_ui

cfg = app_ui.page_setup("Monitor")
st.title("Monitor training")

frame = app_ui.runs_table(cfg.runs_dir)
ids = app_ui.run_with_data(frame)
if not ids:
    st.info("No run has recorded a step yet. Start one on the Train page.")
    st.page_link("pages/1_Train.py", label="New training run", icon=":material/rocket_launch:")
    st.stop()

running = [i for i in ids if frame.loc[frame["id"] == i, "status"].iloc[0] == "running"]
default = running or ([st.session_state["run"]] if st.session_state.get("run") in ids else ids[:1])
c1, c2, c3 = st.columns([4, 1, 1])
chosen = c1.multiselect("Runs", ids, default=default, key="monitor_runs")
threshold = c2.number_input(
    "Mode reward ≥", value=0.7, min_value=0.0, max_value=1.0, step=0.05, key="mode_threshold"
)
live = c3.toggle("Live", value=bool(running), help="refresh every 5 s", key="monitor_live")


@st.cache_data(show_spinner=False, max_entries=64)
def diversity(run_path: str, last: int, threshold: float | None) -> pd.DataFrame:
    """Modes and IntDiv per window of steps (package function; cached per run, last step and threshold)."""
    store = RunStore(run_path)
    molecules = store.read_molecules(max_step=last, expand_components=False)
    steps = store.read_steps(["trajectories"])
    return diversity_over_training(
        molecules, steps, step_windows(last, 20), threshold, _window_cache(run_path, threshold)
    )


@st.cache_resource(show_spinner=False, max_entries=64)
def _window_cache(run_path: str, threshold: float) -> dict:
    return {}


def figure(title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=title,
        template=app_ui.PLOT_TEMPLATE,
        height=320,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        xaxis_title="trajectories sampled",
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def draw() -> None:
    if not chosen:
        st.info("Pick one or more runs.")
        return
    loss = figure("Loss", "loss")
    reward = figure("Reward", "reward")
    logz = figure("log Z", "log Z")
    modes = figure(f"Modes discovered (reward ≥ {threshold:g}, Tanimoto < 0.7)", "modes")
    intdiv = figure("Internal diversity (IntDiv1, per window of steps)", "IntDiv")
    for k, run_id in enumerate(chosen):
        colour = COLOURS[k % len(COLOURS)]
        store = RunStore.open(run_id, cfg.runs_dir)
        last = app_ui.last_step(store)
        steps = app_ui.load_steps(str(store.path), last)
        if steps.empty:
            continue
        x = steps["trajectories"]
        line = {"color": colour}
        if "loss" in steps:
            loss.add_scatter(x=x, y=steps["loss"], name=run_id, line=line)
        if "reward_mean" in steps:
            reward.add_scatter(x=x, y=steps["reward_mean"], name=f"{run_id}: batch mean", line=line)
        if "reward_max" in steps:
            reward.add_scatter(
                x=x, y=steps["reward_max"], name=f"{run_id}: batch best", line={**line, "dash": "dot"}
            )
        if "top100_reward" in steps:
            reward.add_scatter(
                x=x,
                y=steps["top100_reward"],
                name=f"{run_id}: mean of the 100 best so far",
                line={**line, "dash": "dash"},
            )
        if "log_z" in steps:
            logz.add_scatter(x=x, y=steps["log_z"], name=run_id, line=line)
        try:  # the trainer logs modes at its own threshold: reuse them when it is the one asked for
            logged = "modes" in steps and store.config().train.mode_threshold == float(threshold)
        except Exception:  # noqa: BLE001 - an older run without that field
            logged = False
        div = diversity(str(store.path), last, None if logged else float(threshold))
        if logged:
            modes.add_scatter(x=x, y=steps["modes"], name=run_id, line=line)
        else:
            modes.add_scatter(
                x=div["trajectories"], y=div["modes"], name=run_id, line=line, mode="lines+markers"
            )
        intdiv.add_scatter(
            x=div["trajectories"], y=div["intdiv"], name=run_id, line=line, mode="lines+markers"
        )
    c1, c2 = st.columns(2)
    c1.plotly_chart(loss, key="loss_chart")
    c2.plotly_chart(reward, key="reward_chart")
    c1, c2 = st.columns(2)
    c1.plotly_chart(logz, key="logz_chart")
    c2.plotly_chart(modes, key="modes_chart")
    c1, c2 = st.columns(2)
    c1.plotly_chart(intdiv, key="intdiv_chart")
    with c2:
        rows = []
        now = app_ui.runs_table(cfg.runs_dir)  # fresh statuses on each live refresh
        for run_id in chosen:
            row = now.loc[now["id"] == run_id].iloc[0]
            rows.append(
                {
                    "run": run_id,
                    "status": app_ui.status_label(row["status"]),
                    "step": row["step"],
                    "trajectories": row["trajectories"],
                    "best reward": row["best_reward"],
                }
            )
        st.dataframe(pd.DataFrame(rows), hide_index=True)


if live:
    st.fragment(draw, run_every=5)()
else:
    draw()
