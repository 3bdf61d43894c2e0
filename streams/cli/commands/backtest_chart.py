"""The backtest's chart, one PNG per parameter set: prices on top, then per portfolio the MM and
IM asked at each step against the loss realised over the horizon from it, exceptions marked, the
worst stress window shaded (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from engine.backtest.evaluate import Verdict
from engine.backtest.result import BacktestResult
from engine.backtest.runner import RunSeries

ZONE_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#b71c1c"}


def write_chart(path: Path, result: BacktestResult, run: int) -> None:
    """The PNG of one run (its index in ``result.runs``)."""
    series, verdicts = result.runs[run], result.verdicts[run]
    days = np.array([np.datetime64(int(t), "s") for t in result.path.times], dtype="datetime64[s]")
    panels = 1 + len(verdicts)
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.0 + 1.9 * panels), sharex=True)
    _prices(axes[0], result, days)
    axes[0].set_title(
        f"SPMA backtest, {series.label} ({series.params_version}): requirement against the "
        f"loss over {result.horizon_days:g} days"
    )
    for p, (ax, verdict) in enumerate(zip(axes[1:], verdicts, strict=True)):
        _portfolio(ax, series, p, verdict, days)
        ax.axvspan(days[result.window.first], days[result.window.last], color="#9e9e9e", alpha=0.2)
    axes[-1].set_xlabel("step (UTC)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _prices(ax: Axes, result: BacktestResult, days: np.ndarray) -> None:
    """The path's prices relative to its start."""
    prices = result.path.prices
    for k, und in enumerate(result.path.underlyings):
        ax.plot(days, prices[:, k] / prices[0, k], label=und, linewidth=1.0)
    ax.axvspan(days[result.window.first], days[result.window.last], color="#9e9e9e", alpha=0.2)
    ax.set_ylabel("price / start")
    ax.legend(loc="upper left", fontsize="small", ncol=len(result.path.underlyings))


def _portfolio(ax: Axes, run: RunSeries, p: int, verdict: Verdict, days: np.ndarray) -> None:
    """One portfolio's requirement, realised loss and exceptions."""
    ax.plot(days, run.loss[:, p], color="#757575", linewidth=0.8, label="realised loss")
    ax.plot(days, run.mm[:, p], color="#1565c0", linewidth=1.2, label="MM")
    ax.plot(days, run.im[:, p], color="#1565c0", linewidth=0.8, linestyle="--", label="IM")
    steps = list(verdict.exception_steps)
    ax.scatter(
        days[steps],
        run.loss[steps, p],
        color="#b71c1c",
        marker="x",
        zorder=3,
        label=f"exceptions ({len(steps)})",
    )
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_ylabel("USD")
    zone = verdict.zone
    ax.set_title(
        f"{verdict.portfolio}: coverage {verdict.coverage_mm:.1%} of MM, Basel {zone}",
        fontsize="medium",
        color=ZONE_COLOURS.get(zone, "black"),
        loc="left",
    )
    ax.legend(loc="upper right", fontsize="x-small", ncol=4)
