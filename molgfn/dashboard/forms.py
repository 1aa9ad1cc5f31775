"""The Train form: shipped templates, field-by-field validation, reward components, uploads and file lists."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from molgfn.config import Config, config_from_dict, read_toml
from molgfn.dashboard.settings import UPLOAD_SUFFIXES, safe_file_name, state_dir, write_new_file
from molgfn.errors import MolgfnError
from molgfn.resources import CONFIGS, CONFIGS_DIR, MODELS_DIR, TARGETS_DIR
from molgfn.training.runs import RunStore

_OTHER_FIELD = re.compile(r"\b[a-z_]+\.[a-z_]+\b")
_FIELD_IN_MESSAGE = re.compile(r"^[^:]*: ((?:[a-z_]+)(?:\.[a-z_]+|\[\d+\])*): (.*)$", re.S)


# ------------------------------------------------------------------------------------------------ the form
def config_template(name: str = "tiny") -> dict[str, Any]:
    """A shipped config (``default``, ``tiny``) as a dict, the starting point of the Train form."""
    if not re.match(r"^[a-z_]+$", name):
        raise MolgfnError(f"config template {name!r}: unknown")
    if name not in CONFIGS:
        raise MolgfnError(f"config template {name!r}: unknown (shipped: {', '.join(CONFIGS)})")
    return read_toml(CONFIGS[name])


def set_field(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_field(data, "train.batch_size", 8)`` sets ``data["train"]["batch_size"]``."""
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def field_of_error(message: str) -> tuple[str | None, str]:
    """Split a config error ``"source: train.batch_size: must be >= 1 (got 0)"`` into its field and text."""
    match = _FIELD_IN_MESSAGE.match(message)
    if not match:
        return None, message
    return match.group(1), match.group(2)


def validate_form(
    data: Mapping[str, Any], fields: Mapping[str, Any], *, check_files: bool = True
) -> tuple[Config | None, dict[str, str]]:
    """Validate a form: ``data`` is the whole config document, ``fields`` the dotted form fields in it.

    Each field is first checked on its own (so every wrong field gets its message, not just the first),
    then the whole config (cross-field rules such as beta_min <= beta_max, files, the reward). Returns the
    config (None if invalid) and ``{field: message}`` (key ``""`` for a message naming no form field)."""
    errors: dict[str, str] = {}
    for dotted, value in fields.items():
        single: dict[str, Any] = {}
        if dotted.startswith("reward."):
            continue  # reward fields are only meaningful in their component; checked below
        set_field(single, dotted, value)
        try:
            config_from_dict(single, source="form", check_files=False)
        except MolgfnError as exc:
            named, text = field_of_error(str(exc))
            # a rule between fields (beta_min <= beta_max) compares with defaults here: the whole
            # config below decides it
            if named == dotted and not _OTHER_FIELD.search(text):
                errors[dotted] = text
    if errors:
        # rules between fields still get their say: check the rest with the wrong fields left out
        rest = copy.deepcopy(dict(data))
        for dotted in errors:
            section, _, key = dotted.partition(".")
            rest.get(section, {}).pop(key, None)
        try:
            config_from_dict(rest, source="form", check_files=False)
        except MolgfnError as exc:
            dotted, text = field_of_error(str(exc))
            key = dotted if dotted in fields else _closest_field(dotted, fields)
            errors.setdefault(key, text if key else str(exc))
        return None, errors
    try:
        cfg = config_from_dict(data, source="form", base_dir=CONFIGS_DIR, check_files=check_files)
    except MolgfnError as exc:
        dotted, text = field_of_error(str(exc))
        key = dotted if dotted in fields else _closest_field(dotted, fields)
        return None, {key: text if key else str(exc)}
    return cfg, {}


def _closest_field(dotted: str | None, fields: Mapping[str, Any]) -> str:
    if not dotted:
        return ""
    for name in fields:  # reward.components[2].weight -> the form field of component 2's weight
        if name.startswith(dotted) or dotted.startswith(name):
            return name
    return ""


def reward_components(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    components = data.get("reward", {}).get("components", [])
    return [c for c in components if isinstance(c, dict)]


def component_name(component: Mapping[str, Any]) -> str:
    return str(component.get("name") or component.get("kind"))


# ------------------------------------------------------------------------------------------------ uploads
def save_upload(name: str, data: bytes, runs_dir: str | Path, max_bytes: int) -> Path:
    """Store an uploaded assay table under ``<runs_dir>/.dashboard/uploads/`` with a sanitised name;
    refuses (MolgfnError) files over ``max_bytes`` or with another extension than csv/tsv/txt/sdf."""
    if len(data) > max_bytes:
        raise MolgfnError(
            f"{safe_file_name(name)}: {len(data) / 1e6:.1f} MB is over the upload limit of {max_bytes / 1e6:.1f} MB"
        )
    safe = safe_file_name(name)
    if Path(safe).suffix.lower() not in UPLOAD_SUFFIXES:
        raise MolgfnError(f"{safe}: must be a table ({', '.join(UPLOAD_SUFFIXES)})")
    folder = (state_dir(Path(runs_dir).resolve()) / "uploads").resolve()
    return write_new_file(folder, safe, data)


def list_targets() -> list[Path]:
    """The shipped assay tables (``data/targets``), by target name."""
    return sorted(TARGETS_DIR.glob("*.csv"), key=lambda p: target_label(p).lower())


def target_label(path: str | Path) -> str:
    """A shipped assay table as a chemist names it: target, measure, size and ChEMBL id, from the targets
    table of ``data/README.md`` (the file's stem where the table does not list it)."""
    info = _target_table().get(Path(path).name)
    if info is None:
        return Path(path).stem
    return f"{info['target']} · {info['measure']} · {info['molecules']} molecules ({info['chembl']})"


_TARGETS: dict[str, dict[str, str]] = {}


def _target_table() -> dict[str, dict[str, str]]:
    if not _TARGETS:
        try:
            text = (TARGETS_DIR.parent / "README.md").read_text(encoding="utf-8")
        except OSError:
            return {}
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 5 and cells[0].startswith("`") and cells[0].endswith(".csv`"):
                _TARGETS[cells[0].strip("`")] = {
                    "chembl": cells[1],
                    "target": cells[2],
                    "measure": cells[3],
                    "molecules": cells[4],
                }
    return _TARGETS


def list_proxies(runs_dir: str | Path) -> list[Path]:
    """Proxy files: shipped (``models/``) and trained from the dashboard."""
    found = sorted(MODELS_DIR.glob("*.pt")) if MODELS_DIR.is_dir() else []
    folder = Path(runs_dir) / ".dashboard" / "proxies"
    if folder.is_dir():
        found += sorted(folder.glob("*.pt"))
    return found


def run_proxy_path(store: RunStore) -> Path | None:
    """The proxy file of a run's reward, if it has one."""
    try:
        cfg = store.config()
    except MolgfnError:
        return None
    for component in reward_components(cfg.to_dict()):
        if component.get("kind") == "proxy" and component.get("path"):
            return Path(component["path"])
    return None


def proxy_summary(proxy: Any) -> str:
    """What a proxy predicts and how well: target (from the shipped targets table when it is one of them),
    measure and the chosen model's held-out test metrics, e.g. 'Coagulation factor X (F10) · Ki · ...:
    fp model, test RMSE 0.82 pK, R² 0.74 (309 held-out molecules)'."""
    meta = getattr(proxy, "metadata", {}) or {}
    data_file = meta.get("data_file") or "its training table"
    where = target_label(data_file) if data_file in _target_table() else str(data_file)
    metrics = meta.get("metrics") or {}
    chosen = metrics.get("chosen")
    test = (metrics.get("families") or {}).get(chosen, {}).get("test") if chosen else None
    if not test:
        return where
    return (
        f"{where}: {chosen} model, test RMSE {test['rmse']:.2f} pK, R² {test['r2']:.2f} "
        f"({test['n']} held-out molecules, {meta.get('split', {}).get('kind', '?')} split)"
    )
