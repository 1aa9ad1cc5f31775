"""Molecules: a run's sampled molecules as a paginated grid of RDKit drawings and a table; filters,
sorting, SMARTS search with highlighting, and a detail view."""

import math

import numpy as np
import pandas as pd
import streamlit as st

from molgfn.dashboard import (
    EXPORT_FORMATS,
    PROPERTIES,
    PROPERTY_LABELS,
    MolgfnError,
    activity_columns,
    brics_fragments,
    compile_smarts,
    export_bytes,
    load_vocabulary,
    mol_svg,
    molecule_alerts,
    molecule_properties,
    molecule_view,
    nearest_reference,
    shortlist_table,
    substructure_mask,
    unrecorded,
)
from molgfn.dashboard import ui as app_ui

PAGE_SIZE = 24
COLUMNS = 4  # drawings about 300 px wide: atom labels legible at a glance

cfg = app_ui.page_setup("Molecules")
st.title("Molecules")

frame = app_ui.runs_table(cfg.runs_dir)
ids = app_ui.run_with_data(frame)
if not ids:
    st.info("No run has sampled molecules yet. Start one on the Train page.")
    st.stop()

top = st.columns([3, 3, 1])
with top[0]:
    run_id = app_ui.pick_run("Run", ids, key="molecules_run")
store = app_ui.open_run(cfg.runs_dir, run_id)
last = app_ui.last_step(store)
with top[1]:
    if last > 1:
        lo, hi = st.slider(
            "Steps", 1, last, (1, last), key=f"steps_{run_id}", help="training steps whose samples are shown"
        )
    else:
        lo, hi = 1, max(last, 1)
        st.caption(f"step {last}")
with top[2]:
    unique = st.toggle("Unique", value=True, help="one row per molecule (first sample)", key="unique")


@st.cache_data(show_spinner=False, max_entries=16)
def view(run_path: str, last: int, lo: int, hi: int, unique: bool, proxy_path: str | None) -> pd.DataFrame:
    table = molecule_view(app_ui.load_molecules(run_path, last, lo, hi), unique)
    if proxy_path:
        table["novel"] = app_ui.reference_set(proxy_path).is_novel(list(table["smiles"]))
    return table


@st.cache_data(show_spinner=False, max_entries=16)
def activity(run_path: str, last: int, lo: int, hi: int, unique: bool, proxy_path: str) -> pd.DataFrame:
    """The chemist's units: predicted pK with its spread, and whether the proxy is extrapolating."""
    smiles = list(view(run_path, last, lo, hi, unique, None)["smiles"])
    return activity_columns(smiles, app_ui.load_proxy(proxy_path), app_ui.reference_set(proxy_path))


@st.cache_data(show_spinner=False, max_entries=16)
def all_properties(run_path: str, last: int, lo: int, hi: int, unique: bool) -> pd.DataFrame:
    """Recorded by the run while it scored (computed here only for molecules of older runs)."""
    smiles = list(view(run_path, last, lo, hi, unique, None)["smiles"])
    return molecule_properties(smiles, recorded=app_ui.load_properties(run_path, last))


@st.cache_data(show_spinner=False, max_entries=256)
def page_properties(run_path: str, last: int, smiles: tuple[str, ...]) -> pd.DataFrame:
    return molecule_properties(list(smiles), recorded=app_ui.load_properties(run_path, last))


@st.cache_data(show_spinner=False, max_entries=64)
def smarts_hits(run_path: str, last: int, lo: int, hi: int, unique: bool, smarts: str) -> np.ndarray:
    return substructure_mask(list(view(run_path, last, lo, hi, unique, None)["smiles"]), smarts)


proxy_path, proxy, proxy_problem = None, None, None
table = view(str(store.path), last, lo, hi, unique, None)
try:
    proxy_path, proxy, proxy_problem = app_ui.run_proxy(store)
    if proxy is not None:
        table = view(str(store.path), last, lo, hi, unique, str(proxy_path))
except Exception as exc:  # noqa: BLE001 - novelty is optional
    proxy_problem = str(exc)
if table.empty:
    st.info("No molecules in this step window.")
    st.stop()

components = [c for c in table.columns if c.endswith("_desirability")]

# ------------------------------------------------------------------------------------------- filters
with st.sidebar:
    st.header("Filter")
    smarts = st.text_input("Substructure (SMARTS)", key="smarts", placeholder="e.g. c1ccccc1 or [NX3][CX3]=O")
    r = st.slider("Reward", 0.0, 1.0, (0.0, 1.0), step=0.01, key="f_reward")
    ranges = {"reward": (r, (0.0, 1.0))}
    for name in components:
        value = st.slider(name.replace("_", " "), 0.0, 1.0, (0.0, 1.0), step=0.01, key=f"f_{name}")
        ranges[name] = (value, (0.0, 1.0))
    if "novel" in table:  # the run's reward has a proxy
        with_activity = st.toggle(
            "Predicted pK and applicability domain",
            value=len(table) <= 2000,
            key=f"activity_{run_id}",
            help=f"predicts all {len(table):,} molecules once (cached; about 1 s per 1,000 here)",
        )
        if with_activity:
            with st.spinner(f"Predicting the activity of {len(table):,} molecules…"):
                predicted = activity(str(store.path), last, lo, hi, unique, str(proxy_path))
            table = pd.concat([table, predicted.set_index(table.index)], axis=1)
    if "proxy_mean" in table and table["proxy_mean"].notna().any():
        low = float(math.floor(table["proxy_mean"].min()))
        high = float(math.ceil(table["proxy_mean"].max()))
        if high > low:
            value = st.slider("Predicted pK", low, high, (low, high), step=0.1, key=f"f_pk_{run_id}")
            ranges["proxy_mean"] = (value, (low, high))
    domain = "all"
    if "in_domain" in table:
        domain = st.radio(
            "Applicability domain",
            ["all", "inside", "outside"],
            horizontal=True,
            key="f_domain",
            help="inside: nearest training molecule Tanimoto >= 0.4 and proxy spread <= 1.0 pK",
        )
    novelty = "all"
    if "novel" in table:
        novelty = st.radio(
            "Novelty vs the proxy's training set", ["all", "novel", "known"], horizontal=True, key="f_novel"
        )
    else:
        st.caption(f"Novelty: n/a ({app_ui.plain(proxy_problem)})")
    recorded = app_ui.load_properties(str(store.path), last)
    missing = unrecorded(list(table["smiles"]), recorded)
    with_props = st.toggle(
        "Filter and sort by QED, SA, MW, logP, TPSA, HBD, HBA",
        value=missing <= 500,
        key=f"props_all_{run_id}",
        help=(
            "recorded by the run for every molecule"
            if not missing
            else f"computes them once for the {missing:,} molecules the run did not record (cached); "
            "otherwise only for the page shown"
        ),
    )

props = None
if with_props:
    with st.spinner(f"Computing QED, SA, MW, logP, TPSA, HBD and HBA of {missing:,} molecules…"):
        props = all_properties(str(store.path), last, lo, hi, unique)
    table = pd.concat([table, props], axis=1)
    with st.sidebar:
        for name in PROPERTIES:
            values = table[name].dropna()
            if values.empty:
                continue
            low, high = float(math.floor(values.min())), float(math.ceil(values.max()))
            if high > low:
                value = st.slider(PROPERTY_LABELS[name], low, high, (low, high), key=f"f_{name}_{run_id}")
                ranges[name] = (value, (low, high))

mask = np.ones(len(table), dtype=bool)
for name, ((low, high), default) in ranges.items():
    if (low, high) != default:  # a slider left at its full range filters nothing (not even NaN)
        values = table[name].to_numpy(dtype=float)
        mask &= (values >= low - 1e-9) & (values <= high + 1e-9)
if novelty != "all":
    mask &= table["novel"].to_numpy() == (novelty == "novel")
if domain != "all":
    mask &= table["in_domain"].to_numpy() == (domain == "inside")
highlight = None
if smarts.strip():
    try:
        compile_smarts(smarts)
        mask &= smarts_hits(str(store.path), last, lo, hi, unique, smarts.strip())
        highlight = smarts.strip()
    except MolgfnError as exc:
        st.error(
            f"{app_ui.plain(exc)}. Example patterns: `c1ccccc1` (benzene ring), `[OX2H]` (hydroxyl), `C(=O)N` (amide)."
        )

activity_sort = ["proxy_mean", "proxy_std"] if "proxy_mean" in table else []
sort_options = [
    "reward",
    *activity_sort,
    "step",
    "samples",
    *components,
    *(PROPERTIES if props is not None else []),
]
s1, s2, s3 = st.columns([2, 1, 3])
sort_by = s1.selectbox("Sort by", sort_options, key="sort_by")
descending = s2.toggle("Descending", value=True, key="descending")
shown = table[mask].sort_values(sort_by, ascending=not descending, kind="stable", na_position="last")
s3.metric("Molecules shown", f"{len(shown):,} of {len(table):,}")

# ------------------------------------------------------------------------------------------ shortlist
# kept per run in the session (not in widget state: a card's checkbox exists only while its page is shown)
shortlist: list[str] = st.session_state.setdefault("shortlist", {}).setdefault(run_id, [])


def toggle_shortlist(smiles: str) -> None:
    chosen = st.session_state["shortlist"].setdefault(run_id, [])
    if smiles in chosen:
        chosen.remove(smiles)
    else:
        chosen.append(smiles)


with st.expander(f"Shortlist ({len(shortlist)})", expanded=bool(shortlist)):
    if not shortlist:
        st.caption("Tick 'Shortlist' on a molecule to collect it here, then download the shortlist.")
    else:
        picked = (
            table[table["smiles"].isin(shortlist)]
            .set_index("smiles")
            .loc[[s for s in shortlist if s in set(table["smiles"])]]
            .reset_index()
        )
        with st.spinner("Preparing the shortlist…"):
            listed = shortlist_table(picked, proxy if proxy_problem is None else None)
        st.dataframe(listed, hide_index=True, width="stretch", height=min(400, 60 + 35 * len(listed)))
        cols = st.columns(len(EXPORT_FORMATS) + 1)
        for col, (fmt, mime) in zip(cols, EXPORT_FORMATS.items()):
            col.download_button(
                f"Shortlist {fmt.upper()}",
                data=export_bytes(listed, fmt),
                file_name=f"shortlist-{run_id}.{fmt}",
                mime=mime,
                key=f"shortlist_{fmt}",
            )
        if cols[-1].button("Clear", key="shortlist_clear"):
            st.session_state["shortlist"][run_id] = []
            st.rerun()


# -------------------------------------------------------------------------------------------- detail
@st.dialog("Molecule", width="large")
def show_detail(smiles: str) -> None:
    """Everything about one molecule, over the page where the user is (no scrolling to find it)."""
    row = table.loc[table["smiles"] == smiles].iloc[0]
    left, right = st.columns([2, 3])
    with left:
        st.image(mol_svg(smiles, 420, 320, highlight), width="stretch")
        st.code(smiles, language="text")
    with right:
        props_one = page_properties(str(store.path), last, (smiles,)).iloc[0]
        info = {
            "reward": row["reward"],
            **{c.replace("_", " "): row[c] for c in components},
            **{PROPERTY_LABELS[p]: props_one[p] for p in PROPERTIES},
            "first sampled at step": row["step"],
            "times sampled": row.get("samples", 1),
        }
        if "novel" in row:
            info["novel (not in the proxy's training set)"] = bool(row["novel"])
        counts = {PROPERTY_LABELS[p] for p in ("hbd", "hba", "alerts")} | {
            "first sampled at step",
            "times sampled",
        }
        info["structural alerts (PAINS, Brenk, NIH)"] = "; ".join(molecule_alerts(smiles)) or "none"
        if "proxy_mean" in row:
            info["predicted pK"] = row["proxy_mean"]
            info["proxy spread (pK)"] = row["proxy_std"]
            info["inside the applicability domain"] = bool(row["in_domain"])
        st.dataframe(
            pd.DataFrame(
                {
                    "property": list(info),
                    "value": [
                        str(int(v))
                        if k in counts and v == v
                        else f"{v:.3f}"
                        if isinstance(v, float)
                        else str(v)
                        for k, v in info.items()
                    ],
                }
            ),
            hide_index=True,
            height=36 * (len(info) + 1) + 4,  # every row visible, no inner scroll
        )
        try:
            vocab = [f.smiles for f in load_vocabulary(store.config().env.vocab).fragments]
        except Exception:  # noqa: BLE001 - fragments are informative only
            vocab = []
        frags = brics_fragments(smiles, vocab)
        st.markdown("**Fragments** (BRICS decomposition; the run does not record the build tree)")
        if frags.empty:
            st.caption("no BRICS bond: a single fragment")
        else:
            st.dataframe(frags, hide_index=True)
        st.markdown("**Nearest training-set molecule**")
        if proxy_path is not None and proxy_problem is None:
            near, sim = nearest_reference(app_ui.reference_set(str(proxy_path)), smiles)
            if near:
                st.image(mol_svg(near, 300, 220), width=300)
                st.caption(f"`{near}` · Tanimoto {sim:.2f}")
        else:
            st.caption(proxy_problem or "no proxy")


# --------------------------------------------------------------------------------------------- views
# one view at a time (not tabs): only the chosen one is built and sent to the browser
view_mode = st.segmented_control("View", ["Grid", "Table"], default="Grid", key="view_mode") or "Grid"
if view_mode == "Grid":
    pages = max(1, math.ceil(len(shown) / PAGE_SIZE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="page") if pages > 1 else 1
    chunk = shown.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    chunk_props = (
        page_properties(str(store.path), last, tuple(chunk["smiles"]))
        if props is None
        else chunk[list(PROPERTIES)]
    )
    for start in range(0, len(chunk), COLUMNS):
        cols = st.columns(COLUMNS)
        for j, (_, row) in enumerate(chunk.iloc[start : start + COLUMNS].iterrows()):
            with cols[j], st.container(border=True):
                st.image(mol_svg(row["smiles"], 320, 230, highlight), width="stretch")
                qed = chunk_props["qed"].iloc[start + j]
                alerts = chunk_props["alerts"].iloc[start + j] if "alerts" in chunk_props else math.nan
                flag = f" · ⚠ {alerts:.0f} alert{'s' if alerts > 1 else ''}" if alerts > 0 else ""
                st.caption(f"reward **{row['reward']:.3f}** · QED {qed:.2f} · step {row['step']}{flag}")
                if "proxy_mean" in row and pd.notna(row["proxy_mean"]):
                    badge = "" if row["in_domain"] else " · ⚠ outside domain"
                    st.caption(f"pK **{row['proxy_mean']:.1f}** ± {row['proxy_std']:.1f}{badge}")
                b1, b2 = st.columns(2)
                if b1.button("Details", key=f"detail_{start + j}_{row['smiles']}"):
                    show_detail(row["smiles"])  # opened in the run of the click only
                b2.checkbox(
                    "Shortlist",
                    value=row["smiles"] in shortlist,
                    key=f"short_{run_id}_{row['smiles']}",
                    on_change=toggle_shortlist,
                    args=(row["smiles"],),
                )

else:
    display = shown.copy()
    if props is None:
        st.caption(
            "QED, SA, MW, logP, TPSA, HBD and HBA: switch on 'Filter and sort by …' in the sidebar to list them here."
        )
    event = st.dataframe(
        display,
        hide_index=True,
        width="stretch",
        height=420,
        on_select="rerun",
        selection_mode="single-row",
        key="molecule_table",
        column_config={"reward": st.column_config.NumberColumn(format="%.3f")},
    )
    selected = getattr(getattr(event, "selection", None), "rows", None) if event is not None else None
    picked = display.iloc[selected[0]]["smiles"] if selected else None
    if picked is not None and st.session_state.get("table_opened") != picked:  # a new selection: open it
        show_detail(picked)
    st.session_state["table_opened"] = picked
