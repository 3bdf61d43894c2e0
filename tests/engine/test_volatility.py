"""EWMA volatility, its floors, and the dynamic PSR with the anti-procyclicality bound."""

from __future__ import annotations

import math

import pytest

from engine.params import RiskParams
from engine.volatility import EwmaVolatility, dynamic_psr, ewma_variance_update, floored_vol

PARAMS = RiskParams()


def test_ewma_update_by_hand() -> None:
    assert float(ewma_variance_update(0.0004, 0.03, 0.94)) == pytest.approx(
        0.94 * 0.0004 + 0.06 * 0.0009
    )


def test_returns_scale_to_one_day() -> None:
    vol = EwmaVolatility(0.94)
    vol.update(100.0, 0.0)
    assert vol.daily() is None
    vol.update(101.0, 3600.0)  # a 1% hourly move is sqrt(24)% a day
    assert vol.daily() == pytest.approx(math.log(1.01) * math.sqrt(24.0))
    assert vol.annualised() == pytest.approx(vol.daily() * math.sqrt(365.0))


def test_floors() -> None:
    assert floored_vol("BTC", None, PARAMS) == 0.60
    assert floored_vol("BTC", 0.4, PARAMS) == 0.60
    assert floored_vol("SOL", 1.2, PARAMS) == 1.2
    assert floored_vol("SOL", 0.5, PARAMS) == 0.90


def test_dynamic_psr_rises_at_once_and_falls_at_most_ten_percent_a_day() -> None:
    assert dynamic_psr(0.16, 0.02, None, 0.0, PARAMS) == 0.16  # 2.5 x 2% x sqrt2 = 7%
    high = dynamic_psr(0.16, 0.08, 0.16, 0.0, PARAMS)
    assert high == pytest.approx(2.5 * 0.08 * math.sqrt(2.0))
    calm_next_day = dynamic_psr(0.16, 0.02, high, 1.0, PARAMS)
    assert calm_next_day == pytest.approx(high * 0.9)
    assert dynamic_psr(0.16, 0.02, high, 30.0, PARAMS) == 0.16
    off = RiskParams.model_validate({"dynamic": {"enabled": False}})
    assert dynamic_psr(0.16, 0.08, None, 0.0, off) == 0.16
