"""Backtest benchmark: a year of daily steps, the five portfolio kinds, three parameter sets
(default, span16 and the static preset, dynamic PSR off), on the built-in seeded GARCH year
(engine/backtest). The target: under a minute on this machine.

Prints the whole run's time (margin at every step, losses, verdicts), margin passes a second,
and the verdicts that come with it: per set, the worst MM coverage over the portfolios and how
many portfolios sit in each Basel zone.
"""

from __future__ import annotations

import time

import numpy as np

from bench.report import Row, publish
from engine.backtest.garch import DEFAULT_SEED, garch_year
from engine.backtest.portfolios import kind_specs
from engine.backtest.result import BacktestResult, backtest
from engine.params import RiskParams

SETS = ("default", "span16", "static")
TARGET_S = 60.0


def run() -> tuple[BacktestResult, float]:
    """The whole backtest, timed."""
    path = garch_year(DEFAULT_SEED)
    sets = [(name, RiskParams.preset(name)) for name in SETS]
    start = time.perf_counter()
    with np.errstate(invalid="ignore", divide="ignore"):
        result = backtest(path, kind_specs(), sets)
    return result, time.perf_counter() - start


def main() -> dict[str, float]:
    """Run, print the table, write reports/bench_backtest.json."""
    result, seconds = run()
    steps, portfolios = result.path.steps, len(result.runs[0].portfolios)
    passes = steps * len(SETS)
    rows = [
        Row(
            f"a year ({steps - 1} daily steps) x {portfolios} portfolios x {len(SETS)} sets",
            seconds,
            "s",
            target=TARGET_S,
        ),
        Row("  margin passes a second (one per step and set)", passes / seconds, "/s"),
    ]
    figures: dict[str, float] = {"seconds": seconds, "steps": steps, "portfolios": portfolios}
    for run_, found in zip(result.runs, result.verdicts, strict=True):
        worst = min(v.coverage_mm for v in found)
        zones = [v.zone for v in found]
        counts = ", ".join(f"{zones.count(z)} {z}" for z in ("green", "yellow", "red"))
        rows.append(Row(f"  {run_.label}: worst MM coverage ({counts})", worst * 100.0, "%"))
        figures[f"{run_.label}_worst_coverage_mm"] = worst
    publish("backtest", "margin backtest (built-in GARCH year, engine/backtest)", rows, figures)
    return figures


if __name__ == "__main__":
    main()
