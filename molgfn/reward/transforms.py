"""Desirability transforms: map a component's raw values to [0, 1] (1 = desirable).

Every transform is vectorised over numpy arrays and maps NaN (an invalid molecule, or a value the
component could not compute) to 0, so an invalid molecule never scores above 0.

``sigmoid`` and ``reverse_sigmoid`` follow REINVENT's definition (Blaschke et al., "REINVENT 2.0",
J. Chem. Inf. Model. 2020; ``reinvent_scoring`` ``sigmoid_transformation``)::

    sigmoid(x) = 1 / (1 + 10 ** (-10 k (x - (low + high) / 2) / (high - low)))

so the value is exactly 0.5 at the midpoint, and with the default ``k = 0.5`` it is
1 / (1 + 10**2.5) ~ 0.003 at ``low`` and ~ 0.997 at ``high``. Larger ``k`` gives a steeper curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import expit

from molgfn.errors import MolgfnError
from molgfn.reward._config import Table

_LN10 = math.log(10.0)


class Transform(Protocol):
    """Maps raw values (any real, NaN for invalid) to desirabilities in [0, 1]."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


def _as_array(x: np.ndarray | list[float] | float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _nan_to_zero(y: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(y), 0.0, y)


@dataclass(frozen=True)
class Sigmoid:
    """Increasing REINVENT sigmoid: 0.5 at (low + high) / 2; see the module docstring for the formula.

    Parameters: ``low`` < ``high`` (raw units), ``k`` > 0 steepness (default 0.5).
    """

    low: float
    high: float
    k: float = 0.5

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_array(x)
        mid = 0.5 * (self.low + self.high)
        # 1 / (1 + 10**(-z)) == expit(z * ln 10); expit never overflows
        z = 10.0 * self.k * (x - mid) / (self.high - self.low)
        return _nan_to_zero(expit(z * _LN10))


@dataclass(frozen=True)
class ReverseSigmoid:
    """Decreasing REINVENT sigmoid: ``1 - sigmoid(x)``; 0.5 at the midpoint, ~1 below ``low``."""

    low: float
    high: float
    k: float = 0.5

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_array(x)
        mid = 0.5 * (self.low + self.high)
        z = 10.0 * self.k * (x - mid) / (self.high - self.low)
        return _nan_to_zero(expit(-z * _LN10))


@dataclass(frozen=True)
class Step:
    """Hard threshold: 1 where ``x >= threshold`` (direction "above") or ``x <= threshold`` ("below"), else 0."""

    threshold: float
    direction: str = "above"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_array(x)
        with np.errstate(invalid="ignore"):
            hit = x >= self.threshold if self.direction == "above" else x <= self.threshold
        return np.where(hit, 1.0, 0.0)  # NaN compares False -> 0


@dataclass(frozen=True)
class Window:
    """Smooth window (a double sigmoid): ~1 inside [low, high], -> 0 outside.

    ``window(x) = logistic((x - low) / softness) * logistic((high - x) / softness)`` with
    ``logistic(t) = 1 / (1 + exp(-t))``: about 0.5 at each edge, and 4.4 ``softness`` outside an edge it
    has fallen below 0.012. ``softness`` is in raw units (default 5 % of ``high - low``); ``softness = 0``
    gives a hard window (1 for low <= x <= high, else 0).
    """

    low: float
    high: float
    softness: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_array(x)
        if self.softness == 0:
            with np.errstate(invalid="ignore"):
                return np.where((x >= self.low) & (x <= self.high), 1.0, 0.0)
        y = expit((x - self.low) / self.softness) * expit((self.high - x) / self.softness)
        return _nan_to_zero(y)


@dataclass(frozen=True)
class Linear:
    """Clipped linear ramp: 0 at ``low``, 1 at ``high``: ``clip((x - low) / (high - low), 0, 1)``.

    For a decreasing ramp use ``reverse = true`` (``1 - ramp``).
    """

    low: float
    high: float
    reverse: bool = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_array(x)
        y = np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)
        if self.reverse:
            y = 1.0 - y
        return _nan_to_zero(y)


class OutOfRangeError(ValueError):
    """Raised by :class:`Identity` for values outside [0, 1]; the reward names the component."""


@dataclass(frozen=True)
class Identity:
    """For values already in [0, 1] (QED, PAINS-free flag, Tanimoto similarity, a plugin's score).

    Values outside [0, 1] (beyond a 1e-9 rounding tolerance) are a configuration error, not clipped:
    a plugin returning pK values through ``identity`` would otherwise saturate at 1 silently.
    """

    tolerance: float = 1e-9

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_array(x)
        finite = x[~np.isnan(x)]
        bad = finite[(finite < -self.tolerance) | (finite > 1.0 + self.tolerance)]
        if bad.size:
            raise OutOfRangeError(
                f"raw values outside [0, 1] (e.g. {bad[0]:g}) cannot use transform 'identity'; "
                "choose sigmoid, reverse_sigmoid, step, window or linear"
            )
        return _nan_to_zero(np.clip(x, 0.0, 1.0))


TRANSFORM_KINDS = ("identity", "sigmoid", "reverse_sigmoid", "step", "window", "double_sigmoid", "linear")


def _low_high(table: Table) -> tuple[float, float]:
    low = table.number("low")
    high = table.number("high")
    if not high > low:
        raise table.error("high", f"must be > low (got {high:g} <= {low:g})")
    return low, high


def transform_from_config(table: Table) -> Transform:
    """Build a transform from its config table (``kind`` plus that kind's parameters), validating each field.

    ``double_sigmoid`` is accepted as another name for ``window``.
    """
    kind = table.string("kind", choices=TRANSFORM_KINDS)
    transform: Transform
    if kind == "identity":
        transform = Identity()
    elif kind in ("sigmoid", "reverse_sigmoid"):
        low, high = _low_high(table)
        k = table.number("k", 0.5, gt=0.0)
        transform = Sigmoid(low, high, k) if kind == "sigmoid" else ReverseSigmoid(low, high, k)
    elif kind == "step":
        transform = Step(
            table.number("threshold"), table.string("direction", "above", choices=("above", "below"))
        )
    elif kind in ("window", "double_sigmoid"):
        low, high = _low_high(table)
        transform = Window(low, high, table.number("softness", 0.05 * (high - low), ge=0.0))
    elif kind == "linear":
        low, high = _low_high(table)
        reverse = table.raw("reverse", False)
        if not isinstance(reverse, bool):
            raise table.error("reverse", f"must be true or false, got {reverse!r}")
        transform = Linear(low, high, reverse)
    else:  # pragma: no cover - choices above are exhaustive
        raise MolgfnError(f"{table.field('kind')}: unhandled transform {kind!r}")
    table.finish()
    return transform
