"""The Brock–Hommes belief kernel: equal to its twin, and the classic stability threshold."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from marketsim.markets import reference
from marketsim.markets.beliefs import brock_hommes_step
from marketsim.markets.beliefs import sector_beliefs_step
from marketsim.sectors.investor import MAX_VALUATION_RATIO

deviations = st.floats(-5.0, 5.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    x=st.tuples(deviations, deviations, deviations),
    gross_return=st.floats(1.0001, 1.5),
    trend=st.floats(0.0, 3.0),
    bias=st.floats(-0.5, 0.5),
    cost=st.floats(-5.0, 5.0),
    intensity=st.floats(0.0, 200.0),
    shock=st.floats(-1.0, 1.0),
)
def test_kernel_equals_reference(x, gross_return, trend, bias, cost, intensity, shock):
    """The numba kernel and the textbook twin agree to 1e-9, even at extreme intensities."""
    args = (*x, gross_return, trend, bias, cost, intensity, shock)
    got = brock_hommes_step(*args)
    want = reference.brock_hommes_step(*args)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert 0.0 <= got[1] <= 1.0


def iterate(intensity: float, steps: int = 400, start: float = 0.1) -> np.ndarray:
    """The deterministic BH map from x = start, R = 1.1, g = 1.2, C = 1 (docs/calibration.md)."""
    history = [start, start, start]
    path = []
    for _ in range(steps):
        x, _ = brock_hommes_step(*history, 1.1, 1.2, 0.0, 1.0, intensity, 0.0)
        history = [x, history[0], history[1]]
        path.append(x)
    return np.array(path)


def test_threshold_is_ln_r_over_g_minus_r_over_c():
    """beta* = ln(R / (g - R)) / C = 2.40: below it x returns to 0, above it it does not."""
    threshold = math.log(1.1 / (1.2 - 1.1)) / 1.0
    assert abs(threshold - 2.398) < 1e-3
    for factor in (0.5, 0.9, 0.97):
        assert abs(iterate(factor * threshold, steps=2000)[-1]) < 1e-5, factor
    for factor in (1.03, 1.1, 1.2):
        assert abs(iterate(factor * threshold, steps=2000)[-50:]).min() > 0.4, factor


def test_above_threshold_settles_on_the_nonfundamental_steady_state():
    """Just above beta*, x converges to x* = sqrt(C (1 - beta*/beta) / ((R - 1) g))."""
    threshold = math.log(1.1 / 0.1)
    intensity = 1.2 * threshold
    expected = math.sqrt(1.0 * (1 - threshold / intensity) / (0.1 * 1.2))
    assert abs(iterate(intensity)[-1] - expected) < 1e-6


def test_trend_share_at_the_fundamental_is_a_logit_of_the_cost():
    """At x = 0 trend followers hold 1 / (1 + exp(-beta C)) of the market."""
    _, share = brock_hommes_step(0.0, 0.0, 0.0, 1.1, 1.2, 0.0, 1.0, 2.0, 0.0)
    assert abs(share - 1 / (1 + math.exp(-2.0))) < 1e-12


state_deviations = st.floats(-1.0, MAX_VALUATION_RATIO - 1.0)


@settings(max_examples=300, deadline=None)
@given(
    x=st.tuples(state_deviations, state_deviations, state_deviations),
    gross_return=st.floats(1.0, 2.0, exclude_min=True),
    trend=st.floats(0.0, 4.0),
    bias=st.floats(-1.0, 1.0),
    cost=st.floats(-10.0, 10.0),
    intensity=st.floats(0.0, 1000.0),
    shock=st.floats(-6.0, 6.0),
)
def test_kernel_is_finite_over_the_investors_whole_range(
    x, gross_return, trend, bias, cost, intensity, shock
):
    """Deviations anywhere the investor keeps them ([-1, 99]) and parameters anywhere in
    their documented range give a finite deviation and a share in [0, 1], equal to the twin.

    The twin subtracts two profits of up to ~1e5 that the kernel never forms, so the two
    differ by the rounding of those profits, amplified by the intensity of choice: the
    tolerance is that bound (a few dozen ulps of the profits), not a guess.
    """
    args = (*x, gross_return, trend, bias, cost, intensity, shock)
    deviation, share = brock_hommes_step(*args)
    assert math.isfinite(deviation) and 0.0 <= share <= 1.0
    want_deviation, want_share = reference.brock_hommes_step(*args)
    x1, x2, x3 = x
    excess = abs(x1 - gross_return * x2)
    profits = excess * (abs(trend * x3 + bias) + 2 * abs(gross_return * x2)) + abs(cost)
    share_tol = 1e-12 + 1e-14 * intensity * profits
    assert abs(share - want_share) <= share_tol
    deviation_tol = 1e-12 + 1e-9 * abs(want_deviation)
    deviation_tol += share_tol * abs(trend * x1 + bias) / gross_return
    assert abs(deviation - want_deviation) <= deviation_tol


@settings(max_examples=300, deadline=None)
@given(
    x=st.lists(st.tuples(state_deviations, state_deviations, state_deviations), min_size=1),
    gross_return=st.floats(1.0, 2.0, exclude_min=True),
    trend=st.floats(0.0, 4.0),
    bias=st.floats(-1.0, 1.0),
    cost=st.floats(-10.0, 10.0),
    intensity=st.floats(0.0, 1000.0),
    shock=st.floats(-6.0, 6.0),
)
def test_sector_map_without_news_is_the_classic_kernel(
    x, gross_return, trend, bias, cost, intensity, shock
):
    """With no fundamental news and one bias, the per-sector map is `brock_hommes_step`
    for every sector (so beta* keeps its meaning), and it is finite with shares in [0, 1]."""
    x1, x2, x3 = (np.array(column) for column in zip(*x, strict=True))
    zeros = np.zeros(len(x1))
    deviation, share = sector_beliefs_step(
        x1, x2, x3, zeros, gross_return, trend, bias, bias, cost, intensity, shock
    )
    assert np.isfinite(deviation).all() and ((share >= 0) & (share <= 1)).all()
    for k in range(len(x1)):
        want = brock_hommes_step(
            x1[k], x2[k], x3[k], gross_return, trend, bias, cost, intensity, shock
        )
        np.testing.assert_allclose((deviation[k], share[k]), want, rtol=1e-12, atol=1e-15)


def test_bad_news_turns_investors_against_trend_followers_in_a_boom():
    """In a rising market, negative fundamental news cuts the trend followers' share."""
    args = (np.array([0.5]), np.array([0.4]), np.array([0.3]))
    calm = sector_beliefs_step(*args, np.array([0.0]), 1.1, 1.2, 0.0, 0.0, 1.0, 4.0, 0.0)
    bad = sector_beliefs_step(*args, np.array([-0.2]), 1.1, 1.2, 0.0, 0.0, 1.0, 4.0, 0.0)
    assert bad[1][0] < calm[1][0] and bad[0][0] < calm[0][0]
