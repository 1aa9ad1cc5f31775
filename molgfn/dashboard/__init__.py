"""The dashboard's side of molgfn, and the public API the Streamlit pages in ``app/`` use.

Modules: :mod:`~molgfn.dashboard.settings` (settings, the ``.dashboard/`` folder),
:mod:`~molgfn.dashboard.launch` (launching and queueing runs as background processes),
:mod:`~molgfn.dashboard.progress`, :mod:`~molgfn.dashboard.forms` (the Train form, uploads),
:mod:`~molgfn.dashboard.exports` (generation sources, download bytes), :mod:`~molgfn.dashboard.explore`
(molecule views, diversity over training, chemical space), :mod:`~molgfn.dashboard.drawing` and
:mod:`~molgfn.dashboard.ui` (Streamlit helpers shared by the pages), :mod:`~molgfn.dashboard.campaigns`
(the Campaigns page: campaigns, rounds, background runs, lab downloads and uploads). The pages import from here only
(an import-linter contract in ``pyproject.toml``); names resolve on first use, so importing this package
loads neither RDKit nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "molgfn.dashboard.settings": ("Settings", "state_dir", "safe_file_name", "DEFAULT_MAX_CONCURRENT"),
    "molgfn.dashboard.launch": (
        "read_queue",
        "launched",
        "launch_log_path",
        "new_run_id",
        "train_argv",
        "resume_argv",
        "resume_run",
        "Submitted",
        "submit_run",
        "active_run_ids",
        "pump_queue",
        "cancel_queued",
        "start_proxy_training",
        "dashboard_runs",
        "launch_error",
        "tail",
        "wait_for_status",
    ),
    "molgfn.dashboard.progress": ("Progress", "run_progress", "format_duration", "format_oracle"),
    "molgfn.dashboard.forms": (
        "config_template",
        "set_field",
        "field_of_error",
        "validate_form",
        "reward_components",
        "component_name",
        "save_upload",
        "list_targets",
        "target_label",
        "proxy_summary",
        "list_proxies",
        "run_proxy_path",
    ),
    "molgfn.dashboard.exports": ("EXPORT_FORMATS", "export_bytes", "generator_sources", "shortlist_table"),
    "molgfn.dashboard.explore": (
        "PROPERTIES",
        "PROPERTY_LABELS",
        "canonical",
        "molecule_properties",
        "molecule_alerts",
        "unrecorded",
        "activity_columns",
        "nearest_reference",
        "molecule_view",
        "brics_fragments",
        "step_windows",
        "window_diversity",
        "modes_discovered",
        "diversity_over_training",
        "chemical_space",
    ),
    "molgfn.dashboard.drawing": ("compile_smarts", "substructure_mask", "mol_svg"),
    "molgfn.dashboard.campaigns": (
        "campaigns_table",
        "campaign_view",
        "start_campaign",
        "create_campaign",
        "batch_bytes",
        "import_upload",
    ),
    # what the pages need from the rest of the package
    "molgfn.errors": ("MolgfnError",),
    "molgfn.config": ("config_from_dict", "field_help"),
    "molgfn.chem.vocab": ("load_vocabulary",),
    "molgfn.objectives.registry": ("OBJECTIVES",),
    "molgfn.training.runs": ("RunStore",),
    "molgfn.candidates.generate": ("load_generator",),
    "molgfn.candidates.filters": ("parse_filters",),
    "molgfn.resources": ("DEFAULT_GENERATOR",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'molgfn.dashboard' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
