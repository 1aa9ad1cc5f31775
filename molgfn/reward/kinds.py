"""The registry of reward component kinds: each kind names the function that builds it from its TOML table.

A module providing components registers its kinds on import (``@register_kind("qed", ...)``); the reward
reads this table to validate ``kind = ...`` and to build each term, and imports none of those modules
itself. :func:`component_kinds` loads the built-in providers (:mod:`molgfn.reward.components`,
:mod:`molgfn.reward.plugins`) on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molgfn.errors import MolgfnError

# (table, name, base_dir) -> a component; the table's common keys (kind, name, weight, transform) are read
Builder = Callable[[Any, str, "Path | None"], Any]


@dataclass(frozen=True)
class ComponentKind:
    """A component kind: its name, its builder, and whether its raw values are already in [0, 1] (then its
    transform defaults to identity)."""

    name: str
    build: Builder
    unit_interval: bool
    help: str
    default_transform: dict[str, Any] | None = None  # used when a component gives no transform


COMPONENT_KINDS: dict[str, ComponentKind] = {}
# modules whose import registers the built-in kinds
BUILTIN_PROVIDERS = ("molgfn.reward.components", "molgfn.reward.plugins", "molgfn.reward.docking")


def component_kinds() -> dict[str, ComponentKind]:
    """Every registered kind, the built-in ones loaded first."""
    for module in BUILTIN_PROVIDERS:
        importlib.import_module(module)
    return COMPONENT_KINDS


def register_kind(
    name: str, *, unit_interval: bool = False, help: str = "", default_transform: dict[str, Any] | None = None
) -> Callable[[Builder], Builder]:
    """Register the decorated builder as the component kind ``name``."""

    def decorate(build: Builder) -> Builder:
        if name in COMPONENT_KINDS and COMPONENT_KINDS[name].build is not build:
            raise MolgfnError(f"reward component kind {name!r} is registered twice")
        COMPONENT_KINDS[name] = ComponentKind(name, build, unit_interval, help, default_transform)
        return build

    return decorate
