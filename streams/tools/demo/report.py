"""The demo's report folder: a chart, the per-account worst cases and the event counts.

chart.png (matplotlib, no screen needed): prices relative to the start, accounts by state, and
the insurance fund's balance over the scenario; worst_cases.json: the accounts whose MM ratio
fell lowest, with their status at that moment; counts.json: every tally and the final states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import orjson

from streams.tools.demo.observer import Observer, severity

STATE_COLOURS = {
    "HEALTHY": "#2e7d32",
    "MARGIN_CALL": "#f9a825",
    "LIQUIDATION": "#e65100",
    "BANKRUPT": "#b71c1c",
}


def write_report(
    folder: Path, observer: Observer, summary: dict[str, Any], worst: int = 25
) -> Path:
    """Write chart.png, worst_cases.json and counts.json into a new folder; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    _chart(folder / "chart.png", observer)
    (folder / "worst_cases.json").write_bytes(
        orjson.dumps(_worst(observer, worst), option=orjson.OPT_INDENT_2)
    )
    counts = {**summary, "counts": dict(observer.counts), "final_states": observer.states()}
    (folder / "counts.json").write_bytes(orjson.dumps(counts, option=orjson.OPT_INDENT_2))
    return folder


def _chart(path: Path, observer: Observer) -> None:
    """Three panels over scenario minutes: prices, accounts by state, fund balance."""
    points = observer.timeline
    minutes = [p.minute for p in points]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for und in sorted(points[0].prices) if points else []:
        base = points[0].prices[und]
        ax1.plot(minutes, [p.prices[und] / base for p in points], label=und)
    ax1.set_ylabel("price / start")
    ax1.legend(loc="lower left")
    ax1.set_title("SPMA demo: a crash through the margin engine")
    ax2.stackplot(
        minutes,
        *[[float(p.states.get(state, 0)) for p in points] for state in STATE_COLOURS],
        labels=list(STATE_COLOURS),
        colors=list(STATE_COLOURS.values()),
    )
    ax2.set_ylabel("accounts")
    ax2.legend(loc="lower left", fontsize="small")
    ax3.plot(minutes, [p.fund for p in points], color="#1565c0", label="insurance fund (USD)")
    ax3.set_ylabel("fund balance (USD)")
    ax3.set_xlabel("scenario minute")
    ax4 = ax3.twinx()
    ax4.step(minutes, [p.adl for p in points], color="#6a1b9a", where="post", label="ADL orders")
    ax4.step(
        minutes,
        [p.liquidations for p in points],
        color="#e65100",
        where="post",
        label="liquidation orders",
    )
    ax4.set_ylabel("orders (cumulative)")
    lines = ax3.get_legend_handles_labels()
    more = ax4.get_legend_handles_labels()
    ax3.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _worst(observer: Observer, n: int) -> list[dict[str, Any]]:
    """The n accounts whose MM ratio fell lowest, with the status of that moment."""
    ranked = sorted(observer.worst.values(), key=severity)
    return [
        {
            "account": s.account,
            "state": s.state.value,
            "equity": s.equity,
            "equity_mm": s.equity_mm,
            "mm": s.mm,
            "im": s.im,
            "ratio_mm": (s.equity_mm / s.mm) if s.mm > 0 else None,
            "ts": s.ts.isoformat(),
        }
        for s in ranked[:n]
    ]
