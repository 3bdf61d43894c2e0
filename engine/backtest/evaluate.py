"""The verdict on one parameter set for one portfolio: coverage, exceptions and their tests, the
Basel zone and procyclicality, from the series the run recorded.

An exception is a horizon whose realised loss exceeds the requirement asked at its start (MM,
and separately IM), or whose requirement was not a number: a model that cannot say what it asks
covers nothing (such steps are also counted apart, ``undefined``). The tests (Kupiec,
Christoffersen, Basel) read the MM exceptions: MM is what an account may fall to before it is
liquidated, so it is what must cover the loss over the liquidation horizon. A model that asks
nothing of a portfolio that loses is red outright.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import BoolArray, FloatArray, IntArray
from engine.backtest.procyclicality import Procyclicality, StressWindow, measure
from engine.backtest.runner import RunSeries
from engine.backtest.statistics import TestResult, basel_zone, christoffersen, kupiec_pof


@dataclass(frozen=True)
class Verdict:
    """One portfolio under one parameter set."""

    portfolio: str
    horizons: int
    coverage_mm: float
    coverage_im: float
    exception_steps: tuple[int, ...]
    """Steps whose horizon's loss exceeded MM."""
    exceptions_im: int
    undefined: int
    """Horizons whose MM was not a number (counted as exceptions too)."""
    kupiec: TestResult
    christoffersen: TestResult
    zone: str
    zone_im: str
    procyclicality: Procyclicality


def exceptions(loss: FloatArray, requirement: FloatArray) -> tuple[BoolArray, BoolArray]:
    """The horizons counted (loss known) and the exception flags over them."""
    ok = np.isfinite(loss)
    return ok, np.asarray(~(loss[ok] <= requirement[ok]), dtype=np.bool_)


def zone_of(hits: np.ndarray, loss: FloatArray, requirement: FloatArray, coverage: float) -> str:
    """The Basel zone, red outright when the requirement is nil while losses occur."""
    if hits.size and not np.any(requirement > 0.0) and np.any(loss > 0.0):
        return "red"
    return basel_zone(int(hits.sum()), int(hits.size), coverage)


def verdict(
    run: RunSeries, p: int, coverage: float, window: StressWindow, rise_ahead: IntArray
) -> Verdict:
    """The verdict on portfolio p of a run."""
    loss, mm, im = run.loss[:, p], run.mm[:, p], run.im[:, p]
    ok, hits = exceptions(loss, mm)
    ok_im, hits_im = exceptions(loss, im)
    n = int(hits.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(run.notional[:, p] > 0, mm / run.notional[:, p], np.nan)
    return Verdict(
        portfolio=run.portfolios[p],
        horizons=n,
        coverage_mm=float(1.0 - hits.mean()) if n else 1.0,
        coverage_im=float(1.0 - hits_im.mean()) if hits_im.size else 1.0,
        exception_steps=tuple(int(s) for s in np.flatnonzero(ok)[hits]),
        exceptions_im=int(hits_im.sum()),
        undefined=int(np.count_nonzero(ok & ~np.isfinite(mm))),
        kupiec=kupiec_pof(int(hits.sum()), n, coverage),
        christoffersen=christoffersen(hits),
        zone=zone_of(hits, loss[ok], mm[ok], coverage),
        zone_im=zone_of(hits_im, loss[ok_im], im[ok_im], coverage),
        procyclicality=measure(rate, window, rise_ahead),
    )


def verdicts(
    run: RunSeries, coverage: float, window: StressWindow, rise_ahead: IntArray
) -> list[Verdict]:
    """The verdict on every portfolio of a run."""
    return [verdict(run, p, coverage, window, rise_ahead) for p in range(len(run.portfolios))]
