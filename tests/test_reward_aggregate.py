"""Weighted geometric / arithmetic means and the log-reward against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from molgfn.reward import log_reward
from molgfn.reward.aggregate import aggregate, arithmetic_mean, geometric_mean

D1 = np.array([1.0, 0.25, 0.5])
D2 = np.array([0.64, 1.0, 0.0])


def test_weighted_geometric_mean() -> None:
    s = geometric_mean([D1, D2], [1.0, 3.0])
    # 1**(1/4) * 0.64**(3/4); 0.25**(1/4) * 1; anything * 0**(3/4) = 0
    np.testing.assert_allclose(s, [0.64**0.75, 0.25**0.25, 0.0], rtol=1e-12)
    assert s[0] == pytest.approx(0.715542, abs=1e-6)
    assert s[1] == pytest.approx(0.707107, abs=1e-6)


def test_weighted_arithmetic_mean() -> None:
    s = arithmetic_mean([D1, D2], [1.0, 3.0])
    np.testing.assert_allclose(s, [0.73, 0.8125, 0.125], rtol=1e-12)


def test_zero_weight_component_is_left_out() -> None:
    zeros = np.zeros(3)
    for method in ("geometric", "arithmetic"):
        with_zero = aggregate([D1, D2, zeros], [1.0, 3.0, 0.0], method)
        np.testing.assert_allclose(with_zero, aggregate([D1, D2], [1.0, 3.0], method))


def test_equal_weights_geometric_is_plain_geometric_mean() -> None:
    s = geometric_mean([np.array([0.5]), np.array([0.125])], [2.0, 2.0])
    assert s[0] == pytest.approx(0.25)


def test_log_reward_is_beta_times_log_of_floored_score() -> None:
    scores = np.array([1.0, 0.5, 0.0, np.nan])
    np.testing.assert_allclose(
        log_reward(scores, 2.0, min_score=1e-4),
        [0.0, 2 * math.log(0.5), 2 * math.log(1e-4), 2 * math.log(1e-4)],
    )
    assert np.all(np.isfinite(log_reward(scores, 64.0)))


def test_log_reward_broadcasts_per_trajectory_beta() -> None:
    scores = np.array([0.5, 0.5, 0.25])
    betas = np.array([1.0, 4.0, 2.0])
    np.testing.assert_allclose(
        log_reward(scores, betas), [math.log(0.5), 4 * math.log(0.5), 2 * math.log(0.25)]
    )
    # R = s**beta
    np.testing.assert_allclose(np.exp(log_reward(scores, betas)), scores**betas)


def test_bad_weights_raise() -> None:
    with pytest.raises(ValueError):
        geometric_mean([D1], [0.0])
    with pytest.raises(ValueError):
        arithmetic_mean([D1, D2], [1.0, -1.0])
