"""The backtest's exception tests against known values: Kupiec's POF statistic, Christoffersen's
independence test worked by hand, the Basel traffic-light zones and their boundaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.backtest.statistics import basel_zone, christoffersen, kupiec_pof, transitions

KUPIEC_250 = {0: 5.025, 2: 0.108, 4: 0.769, 5: 1.957, 7: 5.497, 10: 12.956}
"""Kupiec's LR for x exceptions in 250 days at 99%, as the issue gives them (10 exceptions:
12.95549, which its three decimals round up)."""


@pytest.mark.parametrize(("exceptions", "expected"), sorted(KUPIEC_250.items()))
def test_kupiec_statistic_matches_the_known_values(exceptions: int, expected: float) -> None:
    assert kupiec_pof(exceptions, 250, 0.99).statistic == pytest.approx(expected, abs=1e-3)


def test_kupiec_is_nil_at_the_expected_rate() -> None:
    result = kupiec_pof(5, 500, 0.99)
    assert result.statistic == pytest.approx(0.0, abs=1e-12)
    assert result.p_value == pytest.approx(1.0)


def test_kupiec_p_value_is_the_chi_square_tail() -> None:
    result = kupiec_pof(10, 250, 0.99)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(result.statistic / 2.0)))


@given(st.integers(min_value=1, max_value=2000), st.data())
def test_kupiec_is_a_statistic_and_a_probability(n: int, data: st.DataObject) -> None:
    x = data.draw(st.integers(min_value=0, max_value=n))
    result = kupiec_pof(x, n, 0.99)
    assert result.statistic >= 0.0
    assert 0.0 <= result.p_value <= 1.0


@pytest.mark.parametrize(
    ("exceptions", "zone"),
    [(0, "green"), (4, "green"), (5, "yellow"), (9, "yellow"), (10, "red"), (25, "red")],
)
def test_basel_zone_boundaries_in_250_days(exceptions: int, zone: str) -> None:
    assert basel_zone(exceptions, 250, 0.99) == zone


@given(st.integers(min_value=1, max_value=3000))
def test_basel_zones_only_worsen_with_more_exceptions(n: int) -> None:
    order = {"green": 0, "yellow": 1, "red": 2}
    zones = [order[basel_zone(x, n, 0.99)] for x in range(0, min(n, 80) + 1)]
    assert zones == sorted(zones)


def test_christoffersen_against_a_hand_computed_value() -> None:
    hits = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0], dtype=bool)
    assert transitions(hits) == (6, 2, 2, 1)
    # pi = 3/11, pi01 = 2/8, pi11 = 1/3
    null = 8 * math.log(8 / 11) + 3 * math.log(3 / 11)
    chain = 6 * math.log(6 / 8) + 2 * math.log(2 / 8) + 2 * math.log(2 / 3) + math.log(1 / 3)
    expected = -2.0 * (null - chain)
    result = christoffersen(hits)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.statistic == pytest.approx(0.0745, abs=1e-4)  # -2 (-6.4455 + 6.4082)


def test_christoffersen_flags_clustered_exceptions() -> None:
    hits = np.zeros(250, dtype=bool)
    hits[100:105] = True
    assert christoffersen(hits).p_value < 0.01
    spread = np.zeros(250, dtype=bool)
    spread[::50] = True
    assert christoffersen(spread).p_value > 0.05


def test_christoffersen_without_exceptions_rejects_nothing() -> None:
    result = christoffersen(np.zeros(100, dtype=bool))
    assert (result.statistic, result.p_value) == (0.0, 1.0)
