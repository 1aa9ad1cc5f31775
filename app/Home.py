"""molgfn dashboard: home page (what molgfn does, the runs, quick actions)."""

import streamlit as st

from molgfn.dashboard import ui as app_ui

cfg = app_ui.page_setup("Home")

st.title("molgfn")
st.markdown(
    "molgfn proposes diverse, high-scoring candidate molecules for a target. "
    "A GFlowNet assembles each molecule from chemical fragments and learns to sample molecules in proportion "
    "to a reward that combines predicted activity (a proxy model trained on assay data) with drug-likeness. "
    "Here you can train a generator, watch it learn, browse and filter the molecules it proposes, and "
    "export candidates as CSV, SDF or SMILES."
)

st.subheader("Quick actions")
c1, c2, c3, c4 = st.columns(4)
c1.page_link("pages/1_Train.py", label="New training run", icon=":material/rocket_launch:")
c2.page_link("pages/2_Monitor.py", label="Open the monitor", icon=":material/monitoring:")
c3.page_link(
    "pages/5_Generate.py",
    label="Generate with the shipped generator",
    icon=":material/science:",
    query_params={"source": "shipped"},
)
c4.page_link("pages/6_Campaigns.py", label="Design campaigns", icon=":material/autorenew:")


@st.fragment(run_every=3)
def runs_panel() -> None:
    st.subheader("Runs")
    frame = app_ui.runs_table(cfg.runs_dir)
    if frame.empty:
        st.info(f"No runs yet in `{cfg.runs_dir}`. Start one on the Train page.")
        return
    view = frame.assign(status=frame["status"].map(app_ui.status_label), message=frame["message"].fillna(""))
    st.dataframe(
        view[
            [
                "id",
                "status",
                "step",
                "steps",
                "trajectories",
                "best_reward",
                "objective",
                "started",
                "message",
            ]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "best_reward": st.column_config.NumberColumn("best reward", format="%.3f"),
            "step": st.column_config.NumberColumn("step", format="%d"),
            "steps": st.column_config.NumberColumn("of", format="%d"),
        },
    )
    counts = frame["status"].value_counts()
    st.caption(" · ".join(f"{app_ui.status_label(k)}: {v}" for k, v in counts.items()))


runs_panel()
