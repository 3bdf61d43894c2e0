"""EWMA volatility of oracle returns (spec section 5), its floors, and the dynamic PSR (section 12).

Oracle marks arrive at irregular times, so ``EwmaVolatility`` works in one-day units:

- a log return r over dt seconds is scaled to a one-day variance, r^2 x 86400 / dt;
- lambda is a *per-day* decay (RiskMetrics' 0.94 is a daily figure): a return over dt days is
  folded in with decay lambda^dt, so daily closes give exactly var = lambda var + (1 - lambda) r^2,
  and ticks every 100 ms give the same estimate as their daily sum would (not 16 ticks of memory);
- the estimate is bias-corrected while it warms up (it is the weighted mean of the daily-scaled
  squared returns seen so far, weights lambda^age): the first return alone sets it, and later ones
  dilute it by the time they cover, so one noisy return after a start does not linger for days.

The first price only seeds the reference (no variance until a second price, later in time); a
price at the same time as the reference is skipped (the next return covers its move) and an older
one is ignored. Annual vol = sqrt(365 x daily variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.arrays import FloatArray
from engine.params import RiskParams

DAY_SECONDS = 86400.0
DAYS_PER_YEAR = 365.0  # margin-model.md section 2: a year is 365 days
PSR_CAP = 0.99
"""Upper bound of a dynamic PSR: a scan of -100% or worse would take prices to zero or below."""


def ewma_variance_update(
    prev_var: FloatArray | float, log_return: FloatArray | float, lam: float
) -> FloatArray:
    """One EWMA step, lam x previous variance + (1 - lam) x r^2 (vectorised)."""
    prev = np.asarray(prev_var, dtype=np.float64)
    r = np.asarray(log_return, dtype=np.float64)
    return np.asarray(lam * prev + (1.0 - lam) * r * r, dtype=np.float64)


@dataclass
class EwmaVolatility:
    """One underlying's EWMA of daily-scaled squared log returns (per-day decay ``lam``).

    ``weight`` is the total EWMA weight behind ``daily_var`` (1 once warmed up; a state restored
    with only a variance counts as warmed up). ``seeded`` starts the estimate warm at a prior
    daily variance (the floor's, in the stream), so that one intraday tick weighs what it would in
    a daily EWMA instead of setting the volatility alone.
    """

    lam: float
    last_price: float | None = None
    last_ts: float | None = None
    daily_var: float | None = None
    weight: float = 1.0

    @classmethod
    def seeded(cls, lam: float, annual_vol: float) -> EwmaVolatility:
        """An estimator warmed up at a prior annual vol (weight 1), returns folded in by time."""
        return cls(lam, daily_var=annual_vol * annual_vol / DAYS_PER_YEAR, weight=1.0)

    def update(self, price: float, ts: float) -> bool:
        """Feed an accepted mark at ts (epoch seconds); True when a return was folded in."""
        if not (math.isfinite(price) and price > 0.0):
            raise ValueError(f"price: must be positive and finite, got {price}")
        if not math.isfinite(ts):
            raise ValueError(f"ts: must be finite, got {ts}")
        if self.last_price is None or self.last_ts is None:
            self.last_price, self.last_ts = price, ts
            return False
        if ts <= self.last_ts:
            return False
        days = (ts - self.last_ts) / DAY_SECONDS
        r = math.log(price / self.last_price)
        scaled = r * r / days
        new_mass = -math.expm1(days * math.log(self.lam))  # 1 - lam^days, accurate for small dt
        if self.daily_var is None:
            self.daily_var, self.weight = scaled, new_mass
        else:
            total = (1.0 - new_mass) * self.weight + new_mass
            keep = (1.0 - new_mass) * self.weight / total
            self.daily_var = float(ewma_variance_update(self.daily_var, math.sqrt(scaled), keep))
            self.weight = total
        self.last_price, self.last_ts = price, ts
        return True

    def daily(self) -> float | None:
        """One-day vol, or None before two prices."""
        return None if self.daily_var is None else math.sqrt(self.daily_var)

    def annualised(self) -> float | None:
        """Annual vol sqrt(365 x daily variance), or None before two prices."""
        return None if self.daily_var is None else math.sqrt(self.daily_var * DAYS_PER_YEAR)


def floored_vol(underlying: str, ewma_annual: float | None, params: RiskParams) -> float:
    """The annual vol the expected shortfall uses: max(EWMA, floor); the floor before any EWMA."""
    floor = params.shortfall.floor_for(underlying)
    return floor if ewma_annual is None else max(ewma_annual, floor)


def dynamic_psr(
    base_psr: float,
    sigma_1d: float | None,
    prev_psr: float | None,
    days_elapsed: float,
    params: RiskParams,
) -> float:
    """Effective PSR (section 12): max(PSR, k sigma_1d sqrt(h)), falling at most d a day.

    k, h and d are ``params.dynamic``'s vol_multiplier, horizon_days and max_daily_drop. A rise
    applies at once; a fall is bounded below by prev_psr x (1 - d)^days_elapsed (never below the
    base PSR either). Disabled -> the base PSR. sigma_1d None (no EWMA yet) -> the base PSR as the
    target. The result is capped at PSR_CAP.
    """
    dyn = params.dynamic
    if not dyn.enabled:
        return base_psr
    target = base_psr
    if sigma_1d is not None:
        target = max(base_psr, dyn.vol_multiplier * sigma_1d * math.sqrt(dyn.horizon_days))
    if prev_psr is not None and target < prev_psr:
        floor = prev_psr * (1.0 - dyn.max_daily_drop) ** max(days_elapsed, 0.0)
        target = max(target, floor)
    return min(target, PSR_CAP)
