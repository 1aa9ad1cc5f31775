"""Validation of config tables (dicts read from TOML) with error messages that name the field.

Every message starts with the dotted path of the offending field, e.g.
``reward.components[2].transform.high: must be > low (got 1 <= 3)``, so a user can find it in the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from molgfn.errors import MolgfnError

_REQUIRED = object()


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


class Table:
    """A read-once view of one config table: typed getters, then :meth:`finish` rejects unknown keys."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise MolgfnError(f"{path}: must be a table, got {_type_name(data)}")
        self.data = data
        self.path = path
        self._known: set[str] = set()

    def field(self, key: str) -> str:
        """The dotted path of ``key`` in this table, for messages."""
        return f"{self.path}.{key}"

    def error(self, key: str, message: str) -> MolgfnError:
        return MolgfnError(f"{self.field(key)}: {message}")

    def has(self, key: str) -> bool:
        self._known.add(key)
        return key in self.data

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        """The value of ``key`` unchecked (``default`` when absent; absent and no default is an error)."""
        self._known.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise MolgfnError(f"{self.field(key)}: missing (required)")
            return default
        return self.data[key]

    def number(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
    ) -> float:
        """A finite number (integers accepted, booleans not), optionally bounded."""
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number, got {_type_name(value)} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        if gt is not None and not value > gt:
            raise self.error(key, f"must be > {gt:g} (got {value:g})")
        if ge is not None and not value >= ge:
            raise self.error(key, f"must be >= {ge:g} (got {value:g})")
        if le is not None and not value <= le:
            raise self.error(key, f"must be <= {le:g} (got {value:g})")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, *, ge: int | None = None) -> int:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {_type_name(value)} {value!r}")
        if ge is not None and value < ge:
            raise self.error(key, f"must be >= {ge} (got {value})")
        return value

    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {_type_name(value)} {value!r}")
        return value

    def string(self, key: str, default: Any = _REQUIRED, *, choices: Sequence[str] | None = None) -> str:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_type_name(value)} {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"unknown value {value!r}; allowed: {', '.join(choices)}")
        return value

    def strings(self, key: str, default: Any = _REQUIRED, *, non_empty: bool = True) -> list[str]:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be an array of strings, got {value!r}")
        if non_empty and not value:
            raise self.error(key, "must not be empty")
        return list(value)

    def table(self, key: str, default: Any = _REQUIRED) -> Table | None:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        return Table(value, self.field(key))

    def finish(self) -> None:
        """Raise for any key that no getter asked for (a typo, or a parameter of another kind)."""
        unknown = [k for k in self.data if k not in self._known]
        if unknown:
            allowed = ", ".join(sorted(self._known)) or "none"
            raise self.error(str(unknown[0]), f"unknown key; allowed here: {allowed}")
