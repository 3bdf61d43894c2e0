"""A whole backtest: one path, the held portfolios, several parameter sets side by side, and
its JSON form (what `spma backtest` writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from engine.arrays import FloatArray
from engine.backtest.evaluate import Verdict, verdicts
from engine.backtest.path import PricePath
from engine.backtest.portfolios import PortfolioSpec
from engine.backtest.procyclicality import RISE_DAYS, StressWindow, worst_window
from engine.backtest.runner import RunSeries, run_params
from engine.params import RiskParams

COVERAGE = 0.99
HORIZON_DAYS = 2.0


@dataclass(frozen=True)
class BacktestResult:
    """The runs of every parameter set on one path, with their verdicts."""

    path: PricePath
    horizon_days: float
    coverage: float
    window: StressWindow
    runs: tuple[RunSeries, ...]
    verdicts: tuple[tuple[Verdict, ...], ...]
    """One tuple per run, one verdict per portfolio."""

    def dates(self) -> list[str]:
        """Each step's time, ISO-8601 UTC."""
        return [iso(t) for t in self.path.times]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping: the path, the settings, then per parameter set its PSR and,
        per portfolio, the verdict, the exceptions and the series."""
        dates = self.dates()
        return {
            "path": path_dict(self.path),
            "horizon_days": self.horizon_days,
            "coverage_target": self.coverage,
            "stress_window": {
                "start": dates[self.window.first],
                "end": dates[self.window.last],
                "mean_log_return": round(self.window.log_return, 6),
            },
            "dates": dates,
            "params": {
                run.label: run_dict(run, found, dates)
                for run, found in zip(self.runs, self.verdicts, strict=True)
            },
        }


def backtest(
    path: PricePath,
    specs: list[PortfolioSpec],
    params: Sequence[tuple[str, RiskParams]],
    horizon_days: float = HORIZON_DAYS,
    coverage: float = COVERAGE,
) -> BacktestResult:
    """Run every parameter set on the path and judge each portfolio under it."""
    window = worst_window(path, RISE_DAYS)
    rise_ahead = path.index_after(RISE_DAYS)
    runs = tuple(run_params(path, specs, p, label, horizon_days) for label, p in params)
    found = tuple(tuple(verdicts(run, coverage, window, rise_ahead)) for run in runs)
    return BacktestResult(path, horizon_days, coverage, window, runs, found)


def iso(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def path_dict(path: PricePath) -> dict[str, Any]:
    """What the JSON says of the path."""
    return {
        "name": path.name,
        "start": iso(float(path.times[0])),
        "end": iso(float(path.times[-1])),
        "steps": path.steps,
        "underlyings": list(path.underlyings),
        "episodes": [
            {
                "name": e.name,
                "start": iso(float(path.times[e.first])),
                "end": iso(float(path.times[min(e.last, path.steps - 1)])),
            }
            for e in path.episodes
        ],
    }


def rounded(values: FloatArray, digits: int = 2) -> list[float | None]:
    """A series as JSON numbers (None where not a number)."""
    return [None if not np.isfinite(v) else round(float(v), digits) for v in values]


def run_dict(run: RunSeries, found: Sequence[Verdict], dates: list[str]) -> dict[str, Any]:
    """One parameter set's part of the JSON."""
    return {
        "version": run.params_version,
        "psr": {u: rounded(run.psr[:, k], 4) for k, u in enumerate(run.underlyings)},
        "portfolios": {v.portfolio: verdict_dict(run, p, v, dates) for p, v in enumerate(found)},
    }


def verdict_dict(run: RunSeries, p: int, v: Verdict, dates: list[str]) -> dict[str, Any]:
    """One portfolio's verdict, exceptions and series."""
    pc = v.procyclicality
    return {
        "horizons": v.horizons,
        "coverage_mm": round(v.coverage_mm, 6),
        "coverage_im": round(v.coverage_im, 6),
        "exceptions_mm": len(v.exception_steps),
        "exceptions_im": v.exceptions_im,
        "undefined_mm": v.undefined,
        "kupiec": {
            "statistic": round(v.kupiec.statistic, 4),
            "p_value": round(v.kupiec.p_value, 6),
        },
        "christoffersen": {
            "statistic": round(v.christoffersen.statistic, 4),
            "p_value": round(v.christoffersen.p_value, 6),
        },
        "basel_zone": v.zone,
        "basel_zone_im": v.zone_im,
        "max_rise_5d": round(pc.max_rise, 4),
        "peak_to_trough": round(pc.peak_to_trough, 4),
        "stress_rise": round(pc.stress_rise, 4),
        "exceptions": [
            {
                "date": dates[s],
                "loss": round(float(run.loss[s, p]), 2),
                "mm": round(float(run.mm[s, p]), 2),
                "im": round(float(run.im[s, p]), 2),
            }
            for s in v.exception_steps
        ],
        "series": {
            "mm": rounded(run.mm[:, p]),
            "im": rounded(run.im[:, p]),
            "loss": rounded(run.loss[:, p]),
            "notional": rounded(run.notional[:, p]),
        },
    }
