"""Procyclicality of a margin series (EMIR RTS article 28; ESMA's anti-procyclicality measures):
how hard the margin swings into a crash and how far it falls back after.

Each measure reads a margin *rate*, the requirement per USD of the portfolio's gross notional,
so that the price level (a fixed number of coins is worth less after a fall) and the monthly
re-forming of the portfolios do not count as margin moves:

- the largest n-day rise: max over t of rate(t + n days) / rate(t) - 1;
- the peak-to-trough ratio: max(rate) / min(rate) over the path;
- the rise in the worst stress window: the highest rate from the window's first step to n days
  past its end, over the rate at its first step, less 1. The window is the path's n-day stretch
  whose equally weighted log return over its underlyings is the lowest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import FloatArray, IntArray
from engine.backtest.path import PricePath

RISE_DAYS = 5.0


@dataclass(frozen=True)
class StressWindow:
    """The worst n-day stretch of a path: its first and last step and its mean log return."""

    first: int
    last: int
    log_return: float


@dataclass(frozen=True)
class Procyclicality:
    """The three measures of one margin-rate series."""

    max_rise: float
    peak_to_trough: float
    stress_rise: float


def largest_rise(rate: FloatArray, ahead: IntArray) -> float:
    """max over t of rate[ahead[t]] / rate[t] - 1 (steps whose ``ahead`` is -1 left out)."""
    ok = (ahead >= 0) & np.isfinite(rate) & (rate > 0)
    later = rate[np.where(ok, ahead, 0)]
    ratios = np.where(ok & np.isfinite(later), later / np.where(ok, rate, 1.0), np.nan)
    return float(np.nanmax(ratios) - 1.0) if np.any(np.isfinite(ratios)) else 0.0


def peak_to_trough(rate: FloatArray) -> float:
    """max(rate) / min(rate) over the steps with a positive rate (inf if none is positive)."""
    positive = rate[np.isfinite(rate) & (rate > 0)]
    return float(positive.max() / positive.min()) if positive.size else float("inf")


def worst_window(path: PricePath, days: float = RISE_DAYS) -> StressWindow:
    """The n-day stretch with the lowest equally weighted log return of the underlyings."""
    ahead = path.index_after(days)
    logs = np.log(path.prices).mean(axis=1)
    ok = ahead >= 0
    moves = np.where(ok, logs[np.where(ok, ahead, 0)] - logs, np.inf)
    first = int(np.argmin(moves)) if np.any(ok) else 0
    last = int(ahead[first]) if np.any(ok) else path.steps - 1
    return StressWindow(first, last, float(moves[first]) if np.any(ok) else 0.0)


def stress_rise(rate: FloatArray, window: StressWindow, ahead: IntArray) -> float:
    """The highest rate from the window's start to n days past its end over the rate at its
    start, less 1."""
    end = int(ahead[window.last]) if ahead[window.last] >= 0 else rate.size - 1
    start = rate[window.first]
    stretch = rate[window.first : end + 1]
    if not (np.isfinite(start) and start > 0) or not np.any(np.isfinite(stretch)):
        return 0.0
    return float(np.nanmax(stretch) / start - 1.0)


def measure(rate: FloatArray, window: StressWindow, ahead: IntArray) -> Procyclicality:
    """The three measures of a margin-rate series; ``ahead`` maps a step to n days later."""
    return Procyclicality(
        largest_rise(rate, ahead), peak_to_trough(rate), stress_rise(rate, window, ahead)
    )
