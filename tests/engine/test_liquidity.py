"""Depth-curve slippage: hand-computed averages, jumps where a level adds nothing, the beyond-book
charge, both sides, and hypothesis properties (monotone in size and in book thinness, bounded)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.liquidity import average_slippage, liquidity_cost
from engine.market import DepthCurve
from engine.slippage import SlippageCurve

BPS = np.array([10.0, 100.0])
CUM = np.array([1e6, 3e6])
LEVELS = np.array([10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0])
BOOK = np.array([2e6, 6e6, 15e6, 40e6, 90e6, 200e6, 350e6])


def bps_of(
    cumulative: np.ndarray, q: np.ndarray | float, levels: np.ndarray = BPS, mult: float = 2.0
) -> np.ndarray:
    """Average slippage in bps."""
    return average_slippage(levels, cumulative, q, mult) * 1e4


def test_hand_values() -> None:
    got = bps_of(CUM, np.array([0.0, 5e5, 1e6, 2e6, 3e6, 4e6]))
    assert got[0] == 0.0  # the limit at zero
    assert got[1] == pytest.approx(2.5)  # half-way up the first segment from the origin
    assert got[2] == pytest.approx(5.0)
    assert got[3] == pytest.approx((1e6 * 5 + 1e6 * 32.5) / 2e6)  # x runs 10 -> 55 bps
    assert got[4] == pytest.approx((1e6 * 5 + 2e6 * 55) / 3e6)
    assert got[5] == pytest.approx((1e6 * 5 + 2e6 * 55 + 1e6 * 200) / 4e6)  # beyond: 2 x 100


def test_multiplier_scales_only_the_beyond_part() -> None:
    assert bps_of(CUM, 4e6, mult=3.0) == pytest.approx((1e6 * 5 + 2e6 * 55 + 1e6 * 300) / 4e6)
    assert bps_of(CUM, 3e6, mult=3.0) == pytest.approx(bps_of(CUM, 3e6, mult=2.0))


def test_no_depth_charges_everything_beyond() -> None:
    assert bps_of(np.zeros(2), np.array([1.0, 1e6])).tolist() == pytest.approx([200.0, 200.0])
    assert bps_of(np.zeros(2), 0.0) == 0.0


def test_an_empty_level_jumps_to_the_worse_price() -> None:
    # nothing within 10 bps, 1e6 within 100: the first dollar already costs 10 bps
    assert bps_of(np.array([0.0, 1e6]), 1e6) == pytest.approx(55.0)
    # nothing more between 10 and 100 bps: past 1e6 the book is exhausted
    assert bps_of(np.array([1e6, 1e6]), 2e6) == pytest.approx((1e6 * 5 + 1e6 * 200) / 2e6)
    # the empty-top book is never cheaper than one with depth at the top
    thin, deep = np.array([0.0, 3e6]), np.array([1e6, 3e6])
    q = np.linspace(1.0, 5e6, 50)
    assert np.all(bps_of(thin, q) >= bps_of(deep, q))


def test_vectorised_equals_one_by_one_and_sign_is_ignored() -> None:
    q = np.array([[1e5, 7e6], [3.3e7, 4e8]])
    many = average_slippage(LEVELS, BOOK, q, 2.0)
    one = np.array([[float(average_slippage(LEVELS, BOOK, x, 2.0)) for x in row] for row in q])
    assert many.shape == (2, 2)
    np.testing.assert_allclose(many, one, rtol=1e-15)
    np.testing.assert_array_equal(average_slippage(LEVELS, BOOK, -q, 2.0), many)


def test_liquidity_cost_uses_bid_to_sell_and_ask_to_buy() -> None:
    curve = DepthCurve(BPS, CUM, CUM * 2.0)
    q = np.array([3e6, 3e6])
    cost = liquidity_cost(curve, q, np.array([True, False]), 2.0)
    assert cost[0] == pytest.approx(3e6 * (1e6 * 5 + 2e6 * 55) / 3e6 / 1e4)
    assert cost[1] == pytest.approx(3e6 * (2e6 * 5 + 1e6 * 21.25) / 3e6 / 1e4)  # ask 2x deep
    assert liquidity_cost(curve, q, True, 2.0).tolist() == pytest.approx([cost[0], cost[0]])
    assert liquidity_cost(curve, q, False, 2.0).tolist() == pytest.approx([cost[1], cost[1]])
    assert curve.side(True) is curve.bid and curve.side(False) is curve.ask
    assert curve.slippage(True) is curve.slippage(True)  # built once per side


def test_bad_curve_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="cumulative"):
        SlippageCurve.of(BPS, np.array([1.0]))


notionals = st.lists(st.floats(0, 1e9), min_size=2, max_size=30)
depths = st.lists(st.floats(0, 1e8), min_size=7, max_size=7).map(lambda xs: np.cumsum(xs))


@settings(max_examples=100, deadline=None)
@given(q=notionals, cum=depths, mult=st.floats(1, 5))
def test_slippage_never_falls_as_size_grows(q: list[float], cum: np.ndarray, mult: float) -> None:
    slip = average_slippage(LEVELS, cum, np.sort(np.array(q)), mult)
    assert np.all(np.diff(slip) >= -1e-12 * slip[1:])
    assert np.all((slip >= 0.0) & (slip <= mult * LEVELS[-1] / 1e4 * (1 + 1e-12)))


@settings(max_examples=100, deadline=None)
@given(q=notionals, cum=depths, thin=st.floats(0, 1), mult=st.floats(1, 5))
def test_a_thinner_book_never_costs_less(
    q: list[float], cum: np.ndarray, thin: float, mult: float
) -> None:
    sizes = np.array(q)
    deep = average_slippage(LEVELS, cum, sizes, mult)
    scaled = average_slippage(LEVELS, cum * thin, sizes, mult)
    assert np.all(scaled >= deep * (1 - 1e-12))


@settings(max_examples=100, deadline=None)
@given(q=notionals, cum=depths, cut=st.lists(st.floats(0, 1), min_size=7, max_size=7))
def test_a_dominated_book_never_costs_less(
    q: list[float], cum: np.ndarray, cut: list[float]
) -> None:
    """Less notional at every level (still a valid curve) never lowers the slippage."""
    thinner = np.maximum.accumulate(cum * np.array(cut))
    thinner = np.minimum(thinner, cum)
    sizes = np.array(q)
    assert np.all(
        average_slippage(LEVELS, thinner, sizes, 2.0)
        >= average_slippage(LEVELS, cum, sizes, 2.0) * (1 - 1e-12)
    )
