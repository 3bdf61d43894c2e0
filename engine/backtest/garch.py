"""The built-in paths: a seeded GARCH(1,1) Student-t year per underlying, with the documented
stress episodes (``engine.backtest.episodes``) written into it.

Daily log returns r_t = sigma_t z_t, with z_t joint Student-t (4 degrees of freedom, scaled to
unit variance; one chi-square draw per day shared by the underlyings, so their tails come
together) correlated as BTC, ETH and SOL are (0.80, 0.70, 0.75), and
sigma^2_{t+1} = omega + alpha r_t^2 + beta sigma^2_t (alpha 0.08, beta 0.90, omega set so the
long-run vol is the underlying's: 60%, 75%, 100% a year). On an episode's days the returns are
the episode's and the variance is set to its documented multiple of the level before it; the
GARCH recursion carries it down afterwards. The implied vol at a step is the annualised
conditional vol for the next day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from engine.arrays import FloatArray
from engine.backtest.episodes import EPISODES, Episode
from engine.backtest.path import EpisodeWindow, PricePath
from engine.volatility import DAY_SECONDS, DAYS_PER_YEAR


@dataclass(frozen=True)
class Underlying:
    """A built-in underlying: starting price and long-run annual vol."""

    name: str
    spot: float
    annual_vol: float


UNDERLYINGS = (
    Underlying("BTC", 100_000.0, 0.60),
    Underlying("ETH", 4_000.0, 0.75),
    Underlying("SOL", 200.0, 1.00),
)
CORRELATION = np.array([[1.0, 0.80, 0.70], [0.80, 1.0, 0.75], [0.70, 0.75, 1.0]])
ALPHA, BETA, DF = 0.08, 0.90, 4.0
DAYS = 365
START = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
DEFAULT_SEED = 20270101


def student_t_shocks(rng: np.random.Generator, days: int) -> FloatArray:
    """[days, U] correlated Student-t shocks of unit variance (a shared chi-square a day)."""
    normal = rng.standard_normal((days, len(UNDERLYINGS))) @ np.linalg.cholesky(CORRELATION).T
    chi = rng.chisquare(DF, size=(days, 1))
    return np.asarray(normal / np.sqrt(chi / DF) * np.sqrt((DF - 2.0) / DF))


def episode_at(day: int) -> tuple[Episode, int] | None:
    """The episode running on a day of the year and the day's place in it, if any."""
    for episode in EPISODES:
        if episode.day <= day < episode.day + episode.days:
            return episode, day - episode.day
    return None


def garch_year(seed: int = DEFAULT_SEED, days: int = DAYS) -> PricePath:
    """The built-in year: daily prices and implied vols of BTC, ETH and SOL, episodes included."""
    rng = np.random.default_rng(seed)
    shocks = student_t_shocks(rng, days)
    long_run = np.array([u.annual_vol for u in UNDERLYINGS]) ** 2 / DAYS_PER_YEAR
    omega = long_run * (1.0 - ALPHA - BETA)
    var = long_run.copy()
    returns = np.zeros((days, len(UNDERLYINGS)))
    ahead = np.zeros((days + 1, len(UNDERLYINGS)))
    ahead[0] = var
    before = var
    for day in range(days):
        hit = episode_at(day)
        if hit is None:
            returns[day] = np.sqrt(var) * shocks[day]
            var = omega + ALPHA * returns[day] ** 2 + BETA * var
        else:
            episode, k = hit
            before = var if k == 0 else before
            returns[day] = [np.log1p(episode.returns_of(u.name)[k]) for u in UNDERLYINGS]
            var = before * episode.vol_multiple**2
        ahead[day + 1] = var
    return _path(returns, ahead, days)


def _path(returns: FloatArray, ahead: FloatArray, days: int) -> PricePath:
    """The path from its log returns and next-day variances."""
    spots = np.array([u.spot for u in UNDERLYINGS])
    log_prices = np.vstack([np.zeros(len(UNDERLYINGS)), np.cumsum(returns, axis=0)])
    windows = tuple(EpisodeWindow(e.name, e.day, e.day + e.days) for e in EPISODES if e.day < days)
    return PricePath(
        name="built-in GARCH year, 4 crashes",
        times=START + np.arange(days + 1, dtype=np.float64) * DAY_SECONDS,
        underlyings=tuple(u.name for u in UNDERLYINGS),
        prices=spots * np.exp(log_prices),
        implied_vols=np.sqrt(ahead * DAYS_PER_YEAR),
        episodes=windows,
    )
