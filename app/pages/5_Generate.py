"""Generate & export: sample new molecules from a trained run or the shipped generator, filter them,
preview, and download CSV, SDF or SMILES files."""

import streamlit as st

from molgfn.dashboard import (
    DEFAULT_GENERATOR,
    EXPORT_FORMATS,
    MolgfnError,
    export_bytes,
    generator_sources,
    load_generator,
    mol_svg,
    parse_filters,
)
from molgfn.dashboard import ui as app_ui

cfg = app_ui.page_setup("Generate")
st.title("Generate and export")


@st.cache_resource(show_spinner=False, max_entries=4)
def generator(source: str, runs_dir: str):
    return load_generator(DEFAULT_GENERATOR if source == "shipped" else source, runs_dir=runs_dir)


sources = generator_sources(cfg.runs_dir)
if not sources:
    st.info("Nothing to generate from yet: no shipped generator and no run with a checkpoint.")
    st.page_link("pages/1_Train.py", label="Train a generator", icon=":material/rocket_launch:")
    st.stop()

labels = {"shipped": "Shipped generator (models/generator_default)"}
preferred = st.query_params.get("source") or st.session_state.get("run")  # Home's link asks for "shipped"
c1, c2, c3 = st.columns([3, 1, 1])
source = c1.selectbox(
    "Generator",
    sources,
    index=sources.index(preferred) if preferred in sources else 0,
    format_func=lambda s: labels.get(s, f"run {s}"),
    key="gen_source",
)
n = c2.number_input("Molecules", value=100, step=50, key="gen_n")
beta_text = c3.text_input(
    "β (empty: the run's)", value="", key="gen_beta", help="inverse temperature: higher = greedier"
)
c1, c2 = st.columns([1, 4])
unique = c1.toggle("Unique", value=True, key="gen_unique")
filters = c2.text_input(
    "Filters",
    value="",
    key="gen_filters",
    placeholder="e.g. pains,lipinski,sa<=4,qed>=0.5,mw=200-500,has=c1ccccc1",
    help="comma-separated; the same language as `molgfn sample --filters`",
)

problems = []
if not isinstance(n, int) or not 1 <= n <= 100_000:
    problems.append("Molecules: must be an integer from 1 to 100,000")
beta = None
if beta_text.strip():
    try:
        beta = float(beta_text)
        if not beta > 0:
            raise ValueError
    except ValueError:
        problems.append(f"β: must be a positive number (got {app_ui.plain(repr(beta_text))})")
if filters.strip():
    try:
        parse_filters(filters)
    except MolgfnError as exc:
        problems.append(f"Filters: {app_ui.plain(exc)}")
for problem in problems:
    st.error(problem)

if st.button("Generate", type="primary", disabled=bool(problems), key="generate"):
    bar = st.progress(0.0, text="sampling…")
    try:
        table, report = generator(source, str(cfg.runs_dir)).generate(
            int(n),
            beta=beta,
            unique=unique,
            filters=filters.strip() or None,
            progress=lambda f: bar.progress(min(1.0, float(f)), text=f"sampling… {100 * float(f):.0f}%"),
            scoring=lambda f: bar.progress(min(1.0, float(f)), text=f"scoring… {100 * float(f):.0f}%"),
        )
        st.session_state["generated"] = (source, table, report)
    except MolgfnError as exc:
        st.error(app_ui.plain(exc))
    bar.empty()

generated = st.session_state.get("generated")
if generated is not None:
    source_used, table, report = generated
    if "reward" in table:  # the preview and the files, best first
        table = table.sort_values("reward", ascending=False, kind="stable").reset_index(drop=True)
    st.subheader(
        f"{len(table):,} molecules from {app_ui.plain(labels.get(source_used, 'run ' + source_used))}"
    )
    removed = ", ".join(f"{name}: {count:,}" for name, count in report.filtered.items() if count)
    why = (
        " (sampling goes in batches of up to 256 until enough molecules are unique and pass the filters; "
        "the rest of the last batch is not kept)"
        if report.sampled > report.requested
        else ""
    )
    st.caption(
        f"{report.sampled:,} trajectories sampled for {report.requested:,} molecules{why} · "
        f"{report.duplicates:,} duplicates dropped"
        + (f" · removed by filters: {removed}" if removed else "")
        + (" · sorted by reward" if "reward" in table else "")
    )
    if report.capped:
        st.warning(
            f"Only {report.produced:,} of {report.requested:,} molecules after {report.sampled:,} samples "
            "(the sampling cap): loosen the filters or lower β for more variety."
        )
    if (domain := app_ui.domain_summary(table)) is not None:
        st.caption(domain)
    if table.empty:
        st.warning("No molecule passed the filters; loosen them or generate more.")
    else:
        best = table.sort_values("reward", ascending=False).head(12) if "reward" in table else table.head(12)
        st.markdown("**Best 12 by reward**")
        cols = st.columns(6)
        for k, (_, row) in enumerate(best.iterrows()):
            with cols[k % 6]:
                st.image(mol_svg(row["smiles"], 200, 150), width="stretch")
                st.caption(app_ui.molecule_caption(row))
        st.dataframe(table, hide_index=True, width="stretch", height=360)
        cols = st.columns(len(EXPORT_FORMATS))
        stem = f"molgfn-{source_used}"
        for col, (fmt, mime) in zip(cols, EXPORT_FORMATS.items()):
            col.download_button(
                f"Download {fmt.upper()}",
                data=export_bytes(table, fmt),
                file_name=f"{stem}.{fmt}",
                mime=mime,
                key=f"download_{fmt}",
            )
