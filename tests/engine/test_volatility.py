"""EWMA volatility (daily scaling, per-day decay, warm-up), its floors, and the dynamic PSR with
the anti-procyclicality bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.params import RiskParams
from engine.volatility import (
    DAY_SECONDS,
    PSR_CAP,
    EwmaVolatility,
    dynamic_psr,
    ewma_variance_update,
    floored_vol,
)

PARAMS = RiskParams()
LAM = PARAMS.shortfall.ewma_lambda


def test_ewma_update_by_hand() -> None:
    assert float(ewma_variance_update(0.0004, 0.03, 0.94)) == pytest.approx(
        0.94 * 0.0004 + 0.06 * 0.0009
    )
    many = ewma_variance_update(np.array([0.0004, 0.0001]), np.array([0.03, -0.01]), 0.94)
    assert many.tolist() == pytest.approx([0.94 * 0.0004 + 0.06 * 9e-4, 0.94 * 1e-4 + 0.06 * 1e-4])


def test_first_price_seeds_nothing_and_returns_scale_to_one_day() -> None:
    vol = EwmaVolatility(LAM)
    assert not vol.update(100.0, 0.0)
    assert vol.daily() is None and vol.annualised() is None
    assert vol.update(101.0, 3600.0)  # a 1% hourly move is sqrt(24) x 1% a day
    daily = vol.daily()
    assert daily is not None and daily == pytest.approx(math.log(1.01) * math.sqrt(24.0))
    assert vol.annualised() == pytest.approx(daily * math.sqrt(365.0))


def test_a_warm_estimate_follows_the_daily_recursion() -> None:
    """Warmed up (weight 1), one return a day is exactly lam x var + (1 - lam) x r^2."""
    vol = EwmaVolatility(LAM, 100.0, 0.0, 0.0004)
    vol.update(103.0, DAY_SECONDS)
    assert vol.daily_var == pytest.approx(LAM * 0.0004 + (1 - LAM) * math.log(1.03) ** 2)
    vol.update(103.0 * 1.01, 3 * DAY_SECONDS)  # two days: r^2 / 2 a day, decay lam^2
    expected = LAM**2 * vol_before(LAM, 0.0004, 1.03) + (1 - LAM**2) * math.log(1.01) ** 2 / 2
    assert vol.daily_var == pytest.approx(expected)


def vol_before(lam: float, var: float, move: float) -> float:
    """The variance after one daily step from var with a price move factor."""
    return lam * var + (1 - lam) * math.log(move) ** 2


@pytest.mark.parametrize("step_s", [10.0, 60.0, 3600.0, DAY_SECONDS])
def test_decay_is_per_day_whatever_the_tick_rate(step_s: float) -> None:
    """A quiet day multiplies a warm variance by lam, however often the mark ticks."""
    vol = EwmaVolatility(LAM, 100.0, 0.0, 0.0009)
    for i in range(1, int(DAY_SECONDS / step_s) + 1):
        vol.update(100.0, i * step_s)
    assert vol.daily_var == pytest.approx(LAM * 0.0009, rel=1e-9)


def test_warm_up_is_the_time_weighted_mean_of_the_returns() -> None:
    """Before it is warm, the estimate is the decay-weighted mean of daily-scaled r^2."""
    vol = EwmaVolatility(LAM)
    vol.update(100.0, 0.0)
    vol.update(100.0 * math.exp(0.002), 60.0)  # a 0.2% jump in a minute: noisy on its own
    vol.update(100.0 * math.exp(0.002), 6 * 3600.0 + 60.0)  # then six quiet hours
    d1, d2 = 60.0 / DAY_SECONDS, 6 * 3600.0 / DAY_SECONDS
    w1, w2 = (1 - LAM**d1) * LAM**d2, 1 - LAM**d2
    expected = w1 * (0.002**2 / d1) / (w1 + w2)
    assert vol.daily_var == pytest.approx(expected)
    assert vol.daily_var == pytest.approx(0.002**2 / (d1 + d2), rel=0.02)  # ~ realised variance


def test_same_time_and_older_prices() -> None:
    vol = EwmaVolatility(LAM)
    vol.update(100.0, 10.0)
    assert not vol.update(105.0, 10.0)  # same time: skipped, the next return covers the move
    assert not vol.update(50.0, 5.0)  # older: ignored
    assert vol.update(105.0, 10.0 + DAY_SECONDS)
    assert vol.daily_var == pytest.approx(math.log(1.05) ** 2)
    with pytest.raises(ValueError, match="price"):
        vol.update(0.0, 1e9)


def test_floors() -> None:
    assert floored_vol("BTC", None, PARAMS) == PARAMS.shortfall.floor_for("BTC") == 0.60
    assert floored_vol("BTC", 0.4, PARAMS) == 0.60
    assert floored_vol("ETH", 0.75, PARAMS) == 0.75
    assert floored_vol("SOL", 1.2, PARAMS) == 1.2
    assert floored_vol("SOL", 0.5, PARAMS) == 0.90
    assert floored_vol("SOL", None, PARAMS) == 0.90


def test_dynamic_psr_rises_at_once_and_falls_at_most_ten_percent_a_day() -> None:
    assert dynamic_psr(0.16, 0.02, None, 0.0, PARAMS) == 0.16  # 2.5 x 2% x sqrt2 = 7.1%
    high = dynamic_psr(0.16, 0.08, 0.16, 0.0, PARAMS)  # raising vol raises PSR at once
    assert high == pytest.approx(2.5 * 0.08 * math.sqrt(2.0))
    assert dynamic_psr(0.16, 0.02, high, 1.0, PARAMS) == pytest.approx(high * 0.9)
    assert dynamic_psr(0.16, 0.02, high, 2.0, PARAMS) == pytest.approx(high * 0.81)
    assert dynamic_psr(0.16, 0.02, high, 0.5, PARAMS) == pytest.approx(high * math.sqrt(0.9))
    assert dynamic_psr(0.16, 0.02, high, 30.0, PARAMS) == 0.16  # never below the base
    assert dynamic_psr(0.16, 0.02, high, -1.0, PARAMS) == pytest.approx(high)
    # a partial fall: the vol target is above the bound
    assert dynamic_psr(0.16, 0.075, high, 1.0, PARAMS) == pytest.approx(2.5 * 0.075 * math.sqrt(2))


def test_dynamic_psr_edges() -> None:
    off = RiskParams.model_validate({"dynamic": {"enabled": False}})
    assert dynamic_psr(0.16, 0.08, None, 0.0, off) == 0.16
    assert dynamic_psr(0.16, 0.08, 0.5, 0.0, off) == 0.16
    assert dynamic_psr(0.16, None, None, 0.0, PARAMS) == 0.16
    assert dynamic_psr(0.16, None, 0.3, 1.0, PARAMS) == pytest.approx(0.27)
    assert dynamic_psr(0.16, 1.0, None, 0.0, PARAMS) == PSR_CAP
    faster = RiskParams.model_validate({"dynamic": {"max_daily_drop": 0.5, "vol_multiplier": 3}})
    assert dynamic_psr(0.16, 0.1, None, 0.0, faster) == pytest.approx(0.3 * math.sqrt(2))
    assert dynamic_psr(0.16, 0.01, 0.4, 1.0, faster) == pytest.approx(0.2)


def test_seeded_estimator_weighs_an_intraday_tick_like_a_daily_ewma() -> None:
    """Warm at the floor, a 5% drop over 61 s adds (1 - 0.94^(61/86400)) of its daily-scaled
    square, which equals what one daily return of 5% adds with weight 0.06, scaled by time."""
    vol = EwmaVolatility.seeded(0.94, 0.60)
    prior = 0.60**2 / 365.0
    assert vol.annualised() == pytest.approx(0.60)
    vol.update(100_000.0, 0.0)
    assert vol.annualised() == pytest.approx(0.60)  # the first price only seeds the reference
    vol.update(95_000.0, 61.0)
    days = 61.0 / 86400.0
    mass = 1.0 - 0.94**days
    r = math.log(0.95)
    expected = (1.0 - mass) * prior + mass * r * r / days
    assert vol.daily_var == pytest.approx(expected, rel=1e-9)
    assert 0.60 < vol.annualised() < 0.70  # one fast tick does not set the volatility alone
