"""Desirability transforms against hand-computed values; NaN always maps to 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from molgfn.reward.transforms import Identity, Linear, OutOfRangeError, ReverseSigmoid, Sigmoid, Step, Window


def test_sigmoid_is_half_at_midpoint_and_matches_reinvent_formula() -> None:
    t = Sigmoid(low=5.0, high=9.0, k=0.5)
    y = t(np.array([7.0, 9.0, 5.0, 8.0]))
    # 1 / (1 + 10**(-10*0.5*(x-7)/4)): exponents 0, -2.5, +2.5, -1.25
    np.testing.assert_allclose(y, [0.5, 0.9968476, 0.0031523, 0.9467598], atol=1e-6)


def test_sigmoid_steepness_k() -> None:
    # k = 0.25 at x = 8: 1 / (1 + 10**-0.625)
    assert Sigmoid(5.0, 9.0, k=0.25)(np.array([8.0]))[0] == pytest.approx(0.8083176, abs=1e-6)


def test_reverse_sigmoid_mirrors_sigmoid() -> None:
    x = np.array([1.0, 4.0, 6.0, 10.0])
    y = ReverseSigmoid(low=2.0, high=6.0)(x)
    np.testing.assert_allclose(y, 1.0 - Sigmoid(2.0, 6.0)(x), atol=1e-12)
    assert y[1] == pytest.approx(0.5)
    assert y[0] > 0.999 and y[3] < 0.001


def test_sigmoid_does_not_overflow_far_from_the_window() -> None:
    with np.errstate(all="raise"):
        y = Sigmoid(0.0, 1.0, k=5.0)(np.array([-1e6, 1e6]))
    np.testing.assert_allclose(y, [0.0, 1.0], atol=1e-12)


def test_step_above_and_below() -> None:
    x = np.array([2.0, 3.0, 4.0, np.nan])
    np.testing.assert_array_equal(Step(3.0, "above")(x), [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(Step(3.0, "below")(x), [1.0, 1.0, 0.0, 0.0])


def test_window_is_one_inside_half_at_edges_zero_outside() -> None:
    t = Window(low=200.0, high=500.0, softness=25.0)
    y = t(np.array([350.0, 200.0, 100.0, 1000.0]))
    logistic = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    expected = [
        logistic(6) ** 2,
        0.5 * logistic(12),
        logistic(-4) * logistic(16),
        logistic(32) * logistic(-20),
    ]
    np.testing.assert_allclose(y, expected, rtol=1e-9)
    assert y[0] == pytest.approx(0.99506, abs=1e-5)
    assert y[2] == pytest.approx(0.017986, abs=1e-6)
    assert y[3] < 1e-8


def test_hard_window_with_zero_softness() -> None:
    y = Window(1.0, 2.0, softness=0.0)(np.array([0.5, 1.0, 1.5, 2.0, 2.5, np.nan]))
    np.testing.assert_array_equal(y, [0, 1, 1, 1, 0, 0])


def test_linear_clips_and_reverses() -> None:
    x = np.array([-1.0, 2.5, 12.0, np.nan])
    np.testing.assert_allclose(Linear(0.0, 10.0)(x), [0.0, 0.25, 1.0, 0.0])
    np.testing.assert_allclose(Linear(0.0, 10.0, reverse=True)(x), [1.0, 0.75, 0.0, 0.0])


def test_identity_passes_unit_interval_and_rejects_values_outside() -> None:
    np.testing.assert_array_equal(Identity()(np.array([0.0, 0.3, 1.0, np.nan])), [0.0, 0.3, 1.0, 0.0])
    with pytest.raises(OutOfRangeError, match="outside"):
        Identity()(np.array([0.5, 7.2]))


@pytest.mark.parametrize(
    "transform",
    [Sigmoid(0, 1), ReverseSigmoid(0, 1), Step(0.5), Window(0, 1, 0.1), Linear(0, 1), Identity()],
    ids=lambda t: type(t).__name__,
)
def test_nan_maps_to_zero_and_output_in_unit_interval(transform) -> None:
    y = transform(np.array([np.nan, 0.0, 0.25, 0.75, 1.0]))
    assert y[0] == 0.0
    assert np.all((y >= 0.0) & (y <= 1.0))
