"""Train: a form for a new run (validated by the package's config rules), launched in the background;
live progress, stop, and the error log of failed runs."""

import streamlit as st

from molgfn.dashboard import (
    OBJECTIVES,
    MolgfnError,
    RunStore,
    cancel_queued,
    component_name,
    config_from_dict,
    config_template,
    field_help,
    format_duration,
    format_oracle,
    launch_log_path,
    list_proxies,
    list_targets,
    resume_run,
    reward_components,
    run_progress,
    save_upload,
    set_field,
    start_proxy_training,
    submit_run,
    tail,
    target_label,
    validate_form,
)
from molgfn.dashboard import ui as app_ui

cfg = app_ui.page_setup("Train")
HELP = field_help()

st.title("Train a generator")
st.caption(
    "A run trains a GFlowNet in a background process: it goes on if you close this page or stop the "
    "dashboard. Fields are checked by the same rules as `molgfn train` config files."
)

TARGETS = {
    "none": "No target: drug-likeness only (QED, size…)",
    "table": "A shipped assay table (trains a proxy first)",
    "proxy": "An existing proxy file",
    "upload": "Upload an assay table (trains a proxy first)",
}

left, right = st.columns([3, 2], gap="large")
errors: dict[str, str] = st.session_state.get("train_errors", {})


def field_error(name: str) -> None:
    """The validation message of a field, right under it."""
    if name in errors:
        st.error(errors[name], icon=":material/error:")


BACKENDS = ["local", "ray"]


def template_values(name: str) -> dict:
    """The value of every field a starting point sets, by widget key."""
    data = config_template(name)
    backend = data["run"].get("backend", "local")
    values = {
        "run_name": str(data["run"]["name"]),
        "objective": data.get("objective", {}).get("name", "tb"),
        "steps": int(data["train"]["steps"]),
        "batch_size": int(data["train"]["batch_size"]),
        "beta_min": float(data["train"]["beta_min"]),
        "beta_max": float(data["train"]["beta_max"]),
        "max_frags": int(data["env"]["max_frags"]),
        "seed": int(data["run"].get("seed", 0)),
        "backend": backend if backend in BACKENDS else "local",
        "ray_address": str(data["run"].get("ray_address", "")),
        "weight_activity": 1.0,  # the proxy term a target adds
    }
    for component in reward_components(data):
        values[f"weight_{component_name(component)}"] = float(component.get("weight", 1.0))
    return values


def apply_template() -> None:
    """Switching the starting point sets every field it shows to the new template (edits are dropped)."""
    for key, value in template_values(st.session_state["template"]).items():
        st.session_state[key] = value
    st.session_state.pop("train_errors", None)


with left:
    template = st.selectbox(
        "Starting point",
        ["default", "tiny"],
        help="default: the shipped defaults (100-fragment vocabulary, the run `molgfn train` makes); tiny: 4 "
        "fragments, trains in seconds (for trying things out). Switching sets every field below to it.",
        key="template",
        on_change=apply_template,
    )
    data = config_template(template)
    for key, value in template_values(template).items():  # first visit: the template's values
        st.session_state.setdefault(key, value)
    fields: dict = {}

    fields["run.name"] = st.text_input("Run name", help=HELP["run.name"], key="run_name")
    field_error("run.name")

    target = st.radio("Target", list(TARGETS), format_func=TARGETS.get, key="target")
    proxy_path = None
    table_path = None
    units = None
    proxy_model = "fp"
    if target in ("table", "upload"):
        proxy_model = st.selectbox(
            "Proxy model",
            ["fp", "auto", "gnn"],
            format_func={
                "fp": "fp: random forest on fingerprints (fast, ~1 min)",
                "auto": "auto: the better of fp and a GNN ensemble on validation (several minutes)",
                "gnn": "gnn: GNN ensemble (several minutes)",
            }.get,
            key="proxy_model",
        )
    if target == "table":
        targets = list_targets()
        table_path = st.selectbox("Assay table", targets, format_func=target_label, key="target_table")
        st.caption(
            "A proxy (activity model) is trained on it first (minutes); the run waits in the queue meanwhile."
        )
    elif target == "proxy":
        proxies = list_proxies(cfg.runs_dir)
        if proxies:
            proxy_path = st.selectbox("Proxy file", proxies, format_func=lambda p: p.name, key="proxy_file")
        else:
            st.warning("No proxy files found (models/*.pt or proxies trained here).")
    elif target == "upload":
        upload = st.file_uploader(
            f"Assay table (CSV, TSV or SDF; at most {cfg.max_upload_mb:g} MB)",
            type=["csv", "tsv", "txt", "sdf"],
            key="upload",
        )
        units = st.selectbox("Label units", ["auto", "p", "nM", "uM", "mM", "M"], key="units")
        if upload is not None and upload.size > cfg.max_upload_bytes:
            st.error(
                f"{app_ui.plain(upload.name)}: {upload.size / 1e6:.1f} MB is over the upload limit of {cfg.max_upload_mb:g} MB."
            )

    components = [c for c in reward_components(data) if c.get("kind") != "proxy"]
    if target == "proxy" and proxy_path is not None:
        components.insert(
            0,
            {
                "name": "activity",
                "kind": "proxy",
                "path": str(proxy_path),
                "weight": 1.0,
                "transform": {"kind": "sigmoid", "low": 5.0, "high": 9.0, "k": 0.5},
            },
        )
    if target in ("table", "upload"):
        components.insert(
            0,
            {
                "name": "activity",
                "kind": "proxy",
                "path": "(proxy being trained)",
                "weight": 1.0,
                "transform": {"kind": "sigmoid", "low": 5.0, "high": 9.0, "k": 0.5},
            },
        )
    data["reward"]["components"] = components

    fields["objective.name"] = st.selectbox(
        "Objective",
        list(OBJECTIVES),
        help=HELP["objective.name"],
        key="objective",
    )
    c1, c2 = st.columns(2)
    with c1:
        fields["train.steps"] = st.number_input("Steps", step=10, help=HELP["train.steps"], key="steps")
        field_error("train.steps")
    with c2:
        fields["train.batch_size"] = st.number_input(
            "Batch size",
            step=1,
            help=HELP["train.batch_size"],
            key="batch_size",
        )
        field_error("train.batch_size")
    c1, c2 = st.columns(2)
    with c1:
        fields["train.beta_min"] = st.number_input(
            "β min",
            step=1.0,
            help=HELP["train.beta_min"],
            key="beta_min",
        )
        field_error("train.beta_min")
    with c2:
        fields["train.beta_max"] = st.number_input(
            "β max",
            step=1.0,
            help=HELP["train.beta_max"],
            key="beta_max",
        )
        field_error("train.beta_max")
    c1, c2 = st.columns(2)
    with c1:
        fields["env.max_frags"] = st.number_input(
            "Max fragments",
            step=1,
            help=HELP["env.max_frags"],
            key="max_frags",
        )
        field_error("env.max_frags")
    with c2:
        fields["run.seed"] = st.number_input("Seed", step=1, help=HELP["run.seed"], key="seed")
        field_error("run.seed")
    b1, b2 = st.columns(2)
    with b1:
        fields["run.backend"] = st.selectbox(
            "Scoring backend",
            BACKENDS,
            help=HELP["run.backend"],
            key="backend",
        )
        field_error("run.backend")
    with b2:
        fields["run.ray_address"] = st.text_input(
            "Ray address",
            help=HELP["run.ray_address"],
            key="ray_address",
            disabled=fields["run.backend"] != "ray",
        )
        field_error("run.ray_address")

    st.markdown("**Reward weights** (0: computed and shown, not used)")
    cols = st.columns(max(1, len(components)))
    for i, component in enumerate(components):
        name = f"reward.components[{i}].weight"
        st.session_state.setdefault(
            f"weight_{component_name(component)}", float(component.get("weight", 1.0))
        )
        with cols[i]:
            fields[name] = st.number_input(
                component_name(component) + (" (multiplies)" if component.get("multiply") else ""),
                step=0.1,
                key=f"weight_{component_name(component)}",
            )
            field_error(name)
    field_error("")

    for dotted, value in fields.items():
        if not dotted.startswith("reward."):
            set_field(data, dotted, value)
    for i, component in enumerate(components):
        component["weight"] = fields[f"reward.components[{i}].weight"]

    launch = st.button("Launch", type="primary", key="launch")

if launch:
    pending_proxy = target in ("table", "upload")
    errors = {}
    data_path = table_path
    if target == "upload":
        upload = st.session_state.get("upload")
        if upload is None:
            errors["upload"] = "choose a table to upload"
        else:
            try:
                data_path = save_upload(upload.name, upload.getvalue(), cfg.runs_dir, cfg.max_upload_bytes)
            except MolgfnError as exc:
                errors["upload"] = str(exc)
    if target == "proxy" and proxy_path is None:
        errors["proxy"] = "no proxy file to use"
    run_cfg = None
    if not errors:
        run_cfg, errors = validate_form(data, fields, check_files=not pending_proxy)
    st.session_state["train_errors"] = errors
    if run_cfg is not None and not errors:
        try:
            requires = requires_pid = None
            if pending_proxy:
                requires, requires_pid = start_proxy_training(
                    data_path,
                    cfg.runs_dir,
                    units=None if units in (None, "auto") else units,
                    model=proxy_model,
                )
                components[0]["path"] = str(requires)
                run_cfg = config_from_dict(data, source="form", check_files=False)
            submitted = submit_run(
                run_cfg,
                cfg.runs_dir,
                max_concurrent=cfg.max_concurrent,
                requires=requires,
                requires_pid=requires_pid,
            )
            st.session_state["train_message"] = f"Run **{app_ui.plain(submitted.run_id)}** {submitted.state}."
            st.session_state["run"] = submitted.run_id
        except MolgfnError as exc:
            st.session_state["train_errors"] = {"": str(exc)}
    st.rerun()

with left:
    for key in ("upload", "proxy"):
        field_error(key)
if st.session_state.get("train_message") and not errors:
    st.toast(st.session_state.pop("train_message"))


with right:

    @st.fragment(run_every=2)
    def runs_panel() -> None:
        st.subheader("Runs")
        frame = app_ui.runs_table(cfg.runs_dir)
        if frame.empty:
            st.info("No runs yet.")
            return
        active = frame[frame["status"].isin(["running", "starting", "queued"])]
        recent = frame[~frame.index.isin(active.index)].head(max(0, 6 - len(active)))
        for row in list(active.itertuples()) + list(recent.itertuples()):
            with st.container(border=True):
                st.markdown(f"**{app_ui.plain(row.id)}** · {app_ui.status_label(row.status)}")
                if row.status == "queued":
                    st.caption(app_ui.plain(row.message or "queued: starts when a slot frees"))
                    if st.button("Cancel", key=f"cancel_{row.id}", help="remove it from the queue"):
                        cancel_queued(cfg.runs_dir, row.id)
                        st.rerun()
                    continue
                if row.status == "starting":
                    st.caption("starting the training process…")
                    continue
                if row.status == "failed" and not isinstance(row.path, str):
                    st.error("The training process failed before creating its run folder.")
                    st.code(row.message or tail(launch_log_path(cfg.runs_dir, row.id)), language="text")
                    continue
                store = RunStore.open(row.path)
                if row.status == "failed":
                    status = store.status()
                    st.error(app_ui.plain(status.get("message") or "training failed"))
                    with st.expander(
                        f"train.log (last lines) · failed at step {status.get('step', '?')}", expanded=True
                    ):
                        st.code(
                            tail(store.log_path, 40) or row.message or "(empty train.log)", language="text"
                        )
                    continue
                progress = run_progress(store)
                rate = f"{progress.traj_per_s:.0f} trajectories/s" if progress.traj_per_s else "—"
                st.progress(
                    progress.fraction,
                    text=f"step {progress.step}/{progress.steps} · {rate} · ETA {format_duration(progress.eta_s) if row.status == 'running' else '—'}",
                )
                if oracle := format_oracle(progress):
                    st.caption(oracle)
                if row.status == "running":
                    if st.button("Stop", key=f"stop_{row.id}", help="checkpoint, then stop (resumable)"):
                        try:
                            store.request_stop()
                            st.toast(
                                f"Stopping {app_ui.plain(row.id)}: it checkpoints after its current step."
                            )
                        except MolgfnError as exc:
                            st.error(app_ui.plain(exc))
                elif row.status in ("stopped", "interrupted"):
                    if st.button("Resume", key=f"resume_{row.id}", help="continue from its last checkpoint"):
                        try:
                            resumed = resume_run(cfg.runs_dir, row.id, max_concurrent=cfg.max_concurrent)
                            st.toast(
                                f"Run {app_ui.plain(row.id)} {'resumed' if resumed.state == 'started' else 'queued to resume'}."
                            )
                        except MolgfnError as exc:
                            st.error(app_ui.plain(exc))

    runs_panel()
