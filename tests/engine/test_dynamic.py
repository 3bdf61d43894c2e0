"""engine/dynamic.py: the effective PSR over time (margin-model.md section 12)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dynamic import PsrTracker, sigma_1d
from engine.params import RiskParams

PARAMS = RiskParams()
DAY = 86400.0


def test_sigma_1d_from_annual() -> None:
    assert sigma_1d(0.73) == pytest.approx(0.73 / math.sqrt(365))
    assert sigma_1d(None) is None and sigma_1d(0.0) is None and sigma_1d(float("nan")) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 3 * DAY), st.one_of(st.none(), st.floats(0.05, 5.0))),
        min_size=1,
        max_size=40,
    )
)
def test_never_falls_faster_than_ten_percent_a_day(steps: list[tuple[float, float | None]]) -> None:
    """Whatever the vols and the spacing of updates, PSR(t2) >= PSR(t1) x 0.9^days between."""
    tracker = PsrTracker()
    history: list[tuple[float, float]] = []
    now = 0.0
    for dt, vol in steps:
        now += dt
        psr = tracker.update("BTC", vol, now, PARAMS)
        assert PARAMS.psr_for("BTC") - 1e-12 <= psr <= 0.99
        if vol is not None:
            target = max(0.16, 2.5 * vol / math.sqrt(365) * math.sqrt(2))
            assert psr >= min(target, 0.99) - 1e-12  # a rise applies at once
        for t, earlier in history:
            assert psr >= earlier * 0.9 ** ((now - t) / DAY) - 1e-9
        history.append((now, psr))


def test_round_trip_and_disabled() -> None:
    tracker = PsrTracker()
    tracker.update("ETH", 2.0, 100.0, PARAMS)
    again = PsrTracker.from_dict(tracker.to_dict())
    assert again.current() == tracker.current()
    off = RiskParams(dynamic={"enabled": False})
    assert PsrTracker().update("ETH", 2.0, 0.0, off) == off.psr_for("ETH")
