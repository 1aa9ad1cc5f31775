"""The one exception type users see: a clear message, no traceback, exit code 2."""

from __future__ import annotations


class MolgfnError(Exception):
    """An error caused by the user's input (a file, a row, a field), reported without a traceback."""
