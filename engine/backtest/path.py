"""A price path: the prices of some underlyings at increasing times, with implied vols where known.

Every backtest runs on one: the built-in GARCH year (``engine.backtest.garch``) or a user's CSV
(``engine.backtest.prices_csv``). Episodes name the stress windows a built-in path holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import FloatArray, IntArray
from engine.volatility import DAY_SECONDS


@dataclass(frozen=True)
class EpisodeWindow:
    """Where a stress episode sits in a path: its name, the step before its first move and the
    step after its last."""

    name: str
    first: int
    last: int


@dataclass(frozen=True)
class PricePath:
    """Prices [T, U] at times [T] (epoch seconds, increasing) of underlyings [U]; implied vols
    [T, U] (annual, NaN where unknown) or None when the source gives none."""

    name: str
    times: FloatArray
    underlyings: tuple[str, ...]
    prices: FloatArray
    implied_vols: FloatArray | None = None
    episodes: tuple[EpisodeWindow, ...] = ()

    @property
    def steps(self) -> int:
        """Number of points T."""
        return int(self.times.size)

    def index_after(self, days: float) -> IntArray:
        """[T] the first step at least ``days`` after each step (-1 past the path's end)."""
        target = self.times + days * DAY_SECONDS - 1e-6
        idx = np.searchsorted(self.times, target, side="left").astype(np.int64)
        return np.where(idx < self.steps, idx, -1).astype(np.int64)

    def spots(self, step: int) -> dict[str, float]:
        """Each underlying's price at one step."""
        return {u: float(self.prices[step, k]) for k, u in enumerate(self.underlyings)}
