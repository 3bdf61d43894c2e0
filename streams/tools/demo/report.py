"""The demo's report folder: a chart, every account's worst case and the event counts.

chart.png (matplotlib, no screen needed), over scenario minutes with the calm, crash and recovery
phases shaded: prices relative to the start; HEALTHY and MARGIN_CALL accounts; LIQUIDATION and
BANKRUPT on a panel and scale of their own (the accounts in each state at a step's end, and those
that were in it at some moment of the step: a liquidation that its fills cleared within the step
shows there) with the step's ADL orders; the insurance fund's balance and the cumulative
liquidation and ADL orders. worst_cases.json: every account's worst status (deficits first, then
the lowest MM ratio) with its positions, deficit and event time then; counts.json: every tally
and the final states.
"""

from __future__ import annotations

import threading
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import orjson
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from streams.tools.demo.observer import Observer, TimelinePoint, severity

STATE_COLOURS = {
    "HEALTHY": "#2e7d32",
    "MARGIN_CALL": "#f9a825",
    "LIQUIDATION": "#e65100",
    "BANKRUPT": "#b71c1c",
}
PHASE_COLOURS = {"calm": "#e8f5e9", "crash": "#ffebee", "recovery": "#e3f2fd", "settle": "#f5f5f5"}


def write_report(folder: Path, observer: Observer, summary: dict[str, Any]) -> Path:
    """Write chart.png, worst_cases.json and counts.json into a new folder; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    _chart(folder / "chart.png", observer.timeline)
    (folder / "worst_cases.json").write_bytes(
        orjson.dumps(worst_cases(observer), option=orjson.OPT_INDENT_2)
    )
    tallies = dict(sorted(observer.counts.items()))  # not in the order first seen: runs compare
    counts = {**summary, "counts": tallies, "final_states": observer.states()}
    (folder / "counts.json").write_bytes(orjson.dumps(counts, option=orjson.OPT_INDENT_2))
    return folder


def phases(points: list[TimelinePoint]) -> list[tuple[str, float, float]]:
    """(phase, first minute, last minute) of each run of steps of one phase: a step spans from
    the previous point to its own."""
    spans: list[tuple[str, float, float]] = []
    for before, point in pairwise(points):
        if point.label not in PHASE_COLOURS:
            continue
        if spans and spans[-1][0] == point.label:
            spans[-1] = (point.label, spans[-1][1], point.minute)
        else:
            spans.append((point.label, before.minute, point.minute))
    return spans


_PYPLOT = threading.Lock()
"""pyplot's figures and matplotlib's text parser are not thread-safe: one chart at a time (two
demo runs side by side in one process, as the determinism test has them, failed in its
mathtext parser)."""


def _chart(path: Path, points: list[TimelinePoint]) -> None:
    """Four panels over scenario minutes, the phases shaded on each (one chart at a time)."""
    with _PYPLOT:
        _draw(path, points)


def _draw(path: Path, points: list[TimelinePoint]) -> None:
    """The chart's four panels, saved to ``path``."""
    fig, axes = plt.subplots(
        4, 1, figsize=(10, 12), sharex=True, gridspec_kw={"height_ratios": [3, 3, 3, 3]}
    )
    minutes = [p.minute for p in points]
    spans = phases(points)
    for ax in axes:
        for label, first, last in spans:
            ax.axvspan(first, last, color=PHASE_COLOURS[label], zorder=0)
    for label, first, last in spans:
        axes[0].text(
            (first + last) / 2,
            1.0,
            label,
            transform=axes[0].get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize="small",
        )
    _prices(axes[0], points, minutes)
    _calm_states(axes[1], points, minutes)
    _distress(axes[2], points, minutes)
    _fund(axes[3], points, minutes)
    axes[0].set_title("SPMA demo: a crash through the margin engine", pad=16)
    axes[3].set_xlabel("scenario minute")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _prices(ax: Axes, points: list[TimelinePoint], minutes: list[float]) -> None:
    """Prices relative to the start."""
    for und in sorted(points[0].prices) if points else []:
        base = points[0].prices[und]
        ax.plot(minutes, [p.prices[und] / base for p in points], label=und)
    ax.set_ylabel("price / start")
    ax.legend(loc="lower left", fontsize="small")


def _calm_states(ax: Axes, points: list[TimelinePoint], minutes: list[float]) -> None:
    """HEALTHY and MARGIN_CALL accounts at each step's end."""
    for state in ("HEALTHY", "MARGIN_CALL"):
        counts = [p.states.get(state, 0) for p in points]
        ax.plot(minutes, counts, color=STATE_COLOURS[state], label=state, marker=".")
    ax.set_ylabel("accounts")
    ax.legend(loc="center left", fontsize="small")


def _distress(ax: Axes, points: list[TimelinePoint], minutes: list[float]) -> None:
    """LIQUIDATION, BANKRUPT and ADL on a scale of their own (symmetric log, so that 4 beside 200
    still shows, each bar with its count): per step, the accounts that were LIQUIDATION and
    BANKRUPT at some moment of it and its ADL orders (bars across the step, the seed's before
    minute 0), and the accounts in those states at its end (lines)."""
    adl = [p.adl - (points[i - 1].adl if i else 0) for i, p in enumerate(points)]
    starts = [minutes[i - 1] if i else minutes[0] - 5.0 for i in range(len(points))]
    series = (
        ("LIQUIDATION", [p.entered.get("LIQUIDATION", 0) for p in points], STATE_COLOURS),
        ("BANKRUPT", [p.entered.get("BANKRUPT", 0) for p in points], STATE_COLOURS),
        ("ADL orders", adl, {"ADL orders": "#6a1b9a"}),
    )
    handles: list[Any] = []
    for k, (label, values, colours) in enumerate(series):
        for start, end, value in zip(starts, minutes, values, strict=True):
            width = (end - start) / 3.0
            x = start + k * width
            if value:
                ax.bar(x, value, width=width * 0.9, align="edge", color=colours[label], alpha=0.8)
                ax.text(
                    x + width / 2, value, str(value), ha="center", va="bottom", fontsize="x-small"
                )
        handles.append(Patch(color=colours[label], alpha=0.8, label=f"{label} in the step"))
    for state in ("LIQUIDATION", "BANKRUPT"):
        (line,) = ax.plot(
            minutes,
            [p.states.get(state, 0) for p in points],
            color=STATE_COLOURS[state],
            marker="o",
            markersize=3,
            linewidth=1,
            label=f"{state} at its end",
        )
        handles.append(line)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0, top=max([1, *(v for _, values, _ in series for v in values)]) * 30)
    ax.set_ylabel("accounts, orders")
    ax.legend(handles=handles, loc="upper left", fontsize="x-small", ncol=3)


def _fund(ax: Axes, points: list[TimelinePoint], minutes: list[float]) -> None:
    """The insurance fund's balance, and the cumulative liquidation and ADL orders."""
    ax.plot(minutes, [p.fund for p in points], color="#1565c0", label="insurance fund (USD)")
    ax.set_ylabel("fund balance (USD)")
    right = ax.twinx()
    right.step(
        minutes,
        [p.liquidations for p in points],
        color="#e65100",
        where="post",
        label="liquidation orders",
    )
    right.step(minutes, [p.adl for p in points], color="#6a1b9a", where="post", label="ADL orders")
    right.set_ylabel("orders (cumulative)")
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = right.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, loc="upper left", fontsize="small")


def worst_cases(observer: Observer) -> list[dict[str, Any]]:
    """Every account's worst status (deficits first, the largest first; then the lowest MM
    ratio), with its positions and deficit at that moment."""
    ranked = sorted(observer.worst.items(), key=lambda item: (severity(item[1]), item[0]))
    return [
        {
            "account": account,
            "state": s.state.value,
            "ts": s.ts.isoformat(),
            "deficit": max(-float(s.equity), 0.0),
            "equity": s.equity,
            "equity_mm": s.equity_mm,
            "mm": s.mm,
            "im": s.im,
            "ratio_mm": (s.equity_mm / s.mm) if s.mm > 0 else None,
            "positions": observer.ledger.positions_at(account, s.ts),
            "final_state": observer.last[account].state.value,
        }
        for account, s in ranked
    ]
