"""EWMA volatility of oracle returns, its floors, and the dynamic PSR of section 12.

Returns are log returns between accepted marks scaled to one day (r^2 x 86400 / dt), so that
irregular ticks feed one daily variance; annual vol = sqrt(365 x daily variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.params import RiskParams
from engine.types import FloatArray

DAY_SECONDS = 86400.0


def ewma_variance_update(
    prev_var: FloatArray | float, log_return: FloatArray | float, lam: float
) -> FloatArray:
    """lam x previous + (1 - lam) x r^2."""
    return np.asarray(lam * np.asarray(prev_var) + (1.0 - lam) * np.asarray(log_return) ** 2)


@dataclass
class EwmaVolatility:
    """One underlying's EWMA of daily-scaled squared log returns."""

    lam: float
    last_price: float | None = None
    last_ts: float | None = None
    daily_var: float | None = None

    def update(self, price: float, ts: float) -> None:
        """Feed an accepted mark; out-of-order or same-time prices only move the reference."""
        if self.last_price is not None and self.last_ts is not None and ts > self.last_ts:
            r = math.log(price / self.last_price)
            scaled = r * r * DAY_SECONDS / (ts - self.last_ts)
            prev = scaled if self.daily_var is None else self.daily_var
            self.daily_var = float(ewma_variance_update(prev, math.sqrt(scaled), self.lam))
        if self.last_ts is None or ts >= self.last_ts:
            self.last_price, self.last_ts = price, ts

    def daily(self) -> float | None:
        """One-day vol, or None before two prices."""
        return None if self.daily_var is None else math.sqrt(self.daily_var)

    def annualised(self) -> float | None:
        """Annual vol, or None before two prices."""
        return None if self.daily_var is None else math.sqrt(self.daily_var * 365.0)


def floored_vol(underlying: str, ewma_annual: float | None, params: RiskParams) -> float:
    """The vol the ES uses: max(EWMA, floor) (the floor alone before any EWMA)."""
    floor = params.shortfall.floor_for(underlying)
    return floor if ewma_annual is None else max(ewma_annual, floor)


def dynamic_psr(
    base_psr: float,
    sigma_1d: float | None,
    prev_psr: float | None,
    days_elapsed: float,
    params: RiskParams,
) -> float:
    """PSR_eff = max(PSR, k sigma_1d sqrt(h)), never below prev x (1 - max drop)^days."""
    dyn = params.dynamic
    if not dyn.enabled:
        return base_psr
    target = (
        base_psr
        if sigma_1d is None
        else max(base_psr, dyn.vol_multiplier * sigma_1d * math.sqrt(dyn.horizon_days))
    )
    if prev_psr is not None and target < prev_psr:
        floor = prev_psr * (1.0 - dyn.max_daily_drop) ** max(days_elapsed, 0.0)
        target = max(target, floor)
    return min(target, 0.99)
