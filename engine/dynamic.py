"""Dynamic margin state (margin-model.md section 12): each underlying's effective PSR over time.

``volatility.dynamic_psr`` gives one step (target max(PSR, k sigma_1d sqrt(h)), falling at most
``max_daily_drop`` a day from the previous value). ``PsrTracker`` keeps, per underlying, the
previous effective PSR and the event time it was set, so the bound holds across many updates
(the floor compounds: prev x (1 - d)^days at each step gives (1 - d)^total days) and, persisted
with the partition's market state, across restarts. Rises apply at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.params import RiskParams
from engine.volatility import DAY_SECONDS, DAYS_PER_YEAR, dynamic_psr


def sigma_1d(annual_vol: float | None) -> float | None:
    """One-day vol from an annualised EWMA vol (sigma_annual / sqrt(365)); None stays None."""
    if annual_vol is None or not math.isfinite(annual_vol) or annual_vol <= 0.0:
        return None
    return annual_vol / math.sqrt(DAYS_PER_YEAR)


@dataclass
class PsrTracker:
    """Effective PSR per underlying with the time it was last set (epoch seconds, event time)."""

    state: dict[str, tuple[float, float]] = field(default_factory=dict)

    def update(
        self, underlying: str, annual_vol: float | None, now: float, params: RiskParams
    ) -> float:
        """The new effective PSR of an underlying for its EWMA vol at event time ``now``."""
        base = params.psr_for(underlying)
        prev = self.state.get(underlying)
        if prev is None:
            psr = dynamic_psr(base, sigma_1d(annual_vol), None, 0.0, params)
        else:
            days = max(now - prev[1], 0.0) / DAY_SECONDS
            psr = dynamic_psr(base, sigma_1d(annual_vol), prev[0], days, params)
        self.state[underlying] = (psr, max(now, prev[1]) if prev else now)
        return psr

    def current(self) -> dict[str, float]:
        """The effective PSR of every tracked underlying."""
        return {u: psr for u, (psr, _) in self.state.items()}

    def to_dict(self) -> dict[str, list[float]]:
        """Plain data (a table value)."""
        return {u: [psr, ts] for u, (psr, ts) in self.state.items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]] | None) -> PsrTracker:
        """Inverse of to_dict (None: empty)."""
        return cls({u: (float(v[0]), float(v[1])) for u, v in (data or {}).items()})
