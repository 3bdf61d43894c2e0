"""The shared output of every benchmark: a table of rows `figure | value | target | ratio/ok`
printed to the console and the same figures as reports/bench_<name>.json.

A row with a target says `ok` or `MISS` with value / target (so a miss says by how much); a row
compared with a baseline (the plain reference, numpy's dense floor, the raw broker) says how many
times faster or slower than it the measured figure is.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPORTS = Path("reports")


@dataclass(frozen=True)
class Row:
    """One line of a benchmark table; `value` in `unit` (s, ms, µs, /s, MiB, x or blank)."""

    figure: str
    value: float
    unit: str = ""
    target: float | None = None  # in the same unit; `lower` says which side passes
    lower: bool = True  # True: the value must stay below the target (a time); False: above
    ratio: str = ""  # a comparison with a baseline, already worded

    def verdict(self) -> str:
        """ok/MISS with value / target, else the comparison."""
        if self.target is None:
            return self.ratio
        share = self.value / self.target if self.target else float("inf")
        good = self.value <= self.target if self.lower else self.value >= self.target
        head = "ok" if good else "MISS"
        return f"{head} ({share:.2f}x target){'; ' + self.ratio if self.ratio else ''}"


def times(measured: float, baseline: float, faster: str = "faster", slower: str = "slower") -> str:
    """'12.3x faster than' or '1.5x slower than' the baseline (both times in one unit)."""
    if measured <= 0.0 or baseline <= 0.0:
        return "n/a"
    ratio = baseline / measured
    return f"{ratio:,.1f}x {faster}" if ratio >= 1.0 else f"{1.0 / ratio:,.2f}x {slower}"


def shown(value: float, unit: str) -> str:
    """The value with its unit, rounded for reading."""
    if value != 0.0 and abs(value) < 0.01:
        return f"{value:.2e}{' ' + unit if unit else ''}"
    if unit in ("", "x"):
        return f"{value:,.2f}{unit}" if value != int(value) else f"{int(value):,}{unit}"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    if abs(value) >= 10:
        return f"{value:,.1f} {unit}"
    return f"{value:,.2f} {unit}"


def machine() -> dict[str, Any]:
    """Where and under what load the figures were taken (the lead compares quiet runs)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "load_1m": round(load[0], 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def publish(name: str, title: str, rows: list[Row], extra: dict[str, Any] | None = None) -> None:
    """Print the table and write reports/bench_<name>.json (rows, then any extra figures)."""
    widths = (
        max(len("figure"), *(len(r.figure) for r in rows)),
        max(len("value"), *(len(shown(r.value, r.unit)) for r in rows)),
        max(len("target"), *(len(_target(r)) for r in rows)),
    )
    print(f"\n{title}  [load {machine()['load_1m']}]")
    print(f"{'figure':<{widths[0]}} | {'value':>{widths[1]}} | {'target':>{widths[2]}} | ratio/ok")
    print(f"{'-' * widths[0]}-+-{'-' * widths[1]}-+-{'-' * widths[2]}-+-{'-' * 24}")
    for r in rows:
        print(
            f"{r.figure:<{widths[0]}} | {shown(r.value, r.unit):>{widths[1]}} | "
            f"{_target(r):>{widths[2]}} | {r.verdict()}"
        )
    REPORTS.mkdir(exist_ok=True)
    data = {
        "title": title,
        "machine": machine(),
        "rows": [{**asdict(r), "verdict": r.verdict()} for r in rows],
        **(extra or {}),
    }
    (REPORTS / f"bench_{name}.json").write_text(json.dumps(data, indent=2))


def _target(row: Row) -> str:
    """The target as text ('< 150 ms', '>= 20,000 /s') or blank."""
    if row.target is None:
        return ""
    return f"{'<' if row.lower else '>='} {shown(row.target, row.unit)}"
