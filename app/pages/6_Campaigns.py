"""Campaigns: active learning in rounds. Each campaign's rounds (best label and top-10 mean against
oracle calls, the proxy's error on each batch), its batches as a grid, and the lab round trip."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from molgfn.dashboard import (
    MolgfnError,
    batch_bytes,
    campaign_view,
    campaigns_table,
    create_campaign,
    import_upload,
    mol_svg,
    start_campaign,
)
from molgfn.dashboard import ui as app_ui

cfg = app_ui.page_setup("Campaigns")
st.title("Design campaigns")
campaigns_dir = cfg.campaigns_dir

with st.expander("New campaign", expanded=False):
    st.caption(
        "A campaign config (TOML, see docs/campaigns.md) and, optionally, an assay table to start from."
    )
    config_file = st.file_uploader("Campaign config", type=["toml"], key="campaign_config")
    data_file = st.file_uploader(
        "Assay table (optional)", type=["csv", "tsv", "txt", "sdf"], key="campaign_data"
    )
    if st.button("Create and start", key="campaign_create", disabled=config_file is None):
        try:
            data = (data_file.name, data_file.getvalue()) if data_file is not None else None
            new_id = create_campaign(campaigns_dir, config_file.name, config_file.getvalue(), data)
            start_campaign(campaigns_dir, new_id)
            st.session_state["campaign"] = new_id
            st.toast(f"Campaign {app_ui.plain(new_id)} started.")
        except MolgfnError as exc:
            st.error(app_ui.plain(exc))

table = campaigns_table(campaigns_dir)
if table.empty:
    st.info(
        f"No campaign in `{campaigns_dir}` yet. Create one above, or with `molgfn campaign new --config FILE`."
    )
    st.stop()

st.dataframe(table, hide_index=True, width="stretch")
ids = table["id"].tolist()
preferred = st.session_state.get("campaign")
chosen = st.selectbox(
    "Campaign", ids, index=ids.index(preferred) if preferred in ids else 0, key="campaign_pick"
)
view = campaign_view(campaigns_dir, chosen)

state = view["state"]
line = f"**{state}** · round {view['round']} of {view['rounds']}"
if view["phase"]:
    line += f" · phase {view['phase']}"
st.markdown(line)
if view.get("message") and state in ("failed", "interrupted"):
    st.error(view["message"])
if state == "waiting":
    st.warning(
        f"Round {view['round']}'s batch waits for lab results: download it below, then import the results."
    )
c1, c2 = st.columns([1, 3])
if state != "running" and c1.button("Continue" if state != "finished" else "Run again", key="campaign_run"):
    try:
        start_campaign(campaigns_dir, chosen)
        st.toast(f"Campaign {app_ui.plain(chosen)} continues in the background.")
    except MolgfnError as exc:
        st.error(app_ui.plain(exc))
if state == "running":
    c1.button("Refresh", key="campaign_refresh")
if view["log"]:
    with c2.expander("campaign.log (last lines)"):
        st.code(view["log"], language="text")

summary = view["summary"]
molecules = view["molecules"]
if not summary.empty:
    st.subheader("Rounds")
    fig = go.Figure()
    fig.add_scatter(x=summary["oracle_calls"], y=summary["best"], mode="lines+markers", name="best label")
    fig.add_scatter(
        x=summary["oracle_calls"], y=summary["top10_mean"], mode="lines+markers", name="top-10 mean"
    )
    fig.update_layout(
        template=app_ui.PLOT_TEMPLATE, height=320, xaxis_title="oracle calls", yaxis_title="label",
        margin={"l": 50, "r": 10, "t": 30, "b": 40}, legend={"orientation": "h", "y": -0.25},
    )  # fmt: skip
    st.plotly_chart(fig, width="stretch", key="campaign_curves")
    columns = [c for c in ("round", "labels", "oracle_calls", "best", "top10_mean", "hits", "batch_rmse",
                           "batch_spearman", "proxy_valid_rmse") if c in summary.columns]  # fmt: skip
    st.dataframe(summary[columns], hide_index=True, width="stretch")

measured = molecules[molecules["predicted"].notna() & molecules["label"].notna()]
if not measured.empty:
    scatter = go.Figure()
    scatter.add_scatter(
        x=measured["predicted"], y=measured["label"], mode="markers", text=measured["id"],
        marker={"color": measured["round"], "colorscale": "Viridis", "showscale": True, "colorbar": {"title": "round"}},
    )  # fmt: skip
    scatter.update_layout(
        template=app_ui.PLOT_TEMPLATE, height=360, xaxis_title="predicted before labelling", yaxis_title="measured",
        title="Proxy's prospective predictions", margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )  # fmt: skip
    st.plotly_chart(scatter, width="stretch", key="campaign_scatter")

rounds = sorted(int(r) for r in molecules["round"].unique()) if not molecules.empty else []
if rounds:
    st.subheader("Batches")
    b1, b2, b3 = st.columns([1, 1, 2])
    round_ = b1.selectbox("Round", rounds, index=len(rounds) - 1, key="campaign_round")
    fmt = b2.radio("Format", ["csv", "sdf"], horizontal=True, key="campaign_format")
    try:
        data = batch_bytes(campaigns_dir, chosen, round_, fmt)
        b3.download_button(
            f"Download round {round_}'s batch ({fmt.upper()})", data, file_name=f"{chosen}-round{round_}.{fmt}",
            mime="text/csv" if fmt == "csv" else "chemical/x-mdl-sdfile", key="campaign_download",
        )  # fmt: skip
    except MolgfnError as exc:
        b3.error(str(exc))
    batch = molecules[molecules["round"] == round_].head(48)
    cols = st.columns(6)
    for k, row in enumerate(batch.itertuples(index=False)):
        with cols[k % 6]:
            st.image(mol_svg(row.smiles, 200, 150), width="stretch")
            measured_text = "—" if pd.isna(row.label) else f"{row.label:.2f}"
            predicted_text = "—" if pd.isna(row.predicted) else f"{row.predicted:.2f}"
            st.caption(f"{row.id} · measured {measured_text} · predicted {predicted_text}")

if view["lab"]:
    st.subheader("Import lab results")
    st.caption(
        "A CSV with an `id` (or `smiles`) column and a value column (`label`, `value`, `result` or `measured`)."
    )
    results = st.file_uploader("Results", type=["csv", "tsv", "txt"], key="campaign_results")
    if st.button("Import", key="campaign_import", disabled=results is None):
        try:
            stored, problems = import_upload(campaigns_dir, chosen, results.name, results.getvalue())
            st.success(f"{stored} labels stored.")
            for problem in problems:
                st.warning(problem)
        except MolgfnError as exc:
            st.error(app_ui.plain(exc))
