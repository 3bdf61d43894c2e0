"""The whole deployment for the risk console: every worker's snapshot
(streams/agents/console_snapshot.py) merged into one.

Each worker owns some partitions, so counts add up, the closest-to-liquidation and deficit lists
are re-ranked over all workers, the fund comes from the worker that owns it, each mark from the
worker whose market is the newest, and the state history adds the workers' samples instant by
instant (a worker with no sample at an instant counts as its previous one). Pure functions on
JSON-ready data: no worker, no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Snapshot = Mapping[str, Any]


def merge(
    snapshots: Sequence[Snapshot], unreachable: Iterable[str], closest_n: int, deficits_n: int
) -> dict[str, Any]:
    """One console answer from the workers' snapshots (``unreachable``: workers that did not
    answer, named so the page can say its figures are partial)."""
    return {
        "workers": [
            {"url": s["worker"], "partitions": s["partitions"], "rebalancing": s["rebalancing"]}
            for s in snapshots
        ],
        "unreachable": sorted(unreachable),
        "event_time": max((s["event_time"] for s in snapshots if s["event_time"]), default=None),
        "states": add_counts(s["states"] for s in snapshots),
        "history": add_histories([s["history"] for s in snapshots]),
        "closest": _ranked(snapshots, "closest", _ratio_key)[:closest_n],
        "deficits": _ranked(snapshots, "deficits", _deficit_key)[:deficits_n],
        "fund": next((s["fund"] for s in snapshots if s["fund"] is not None), None),
        "outputs": add_counts(s["outputs"] for s in snapshots),
        "dlq": add_counts(s["dlq"] for s in snapshots),
        "marks": newest_marks(s["marks"] for s in snapshots),
    }


def add_counts(parts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Counts by key, summed."""
    total: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return dict(sorted(total.items()))


def add_histories(histories: Sequence[Sequence[Sequence[Any]]]) -> list[list[Any]]:
    """The workers' [time, counts] samples added instant by instant, each worker counting as its
    latest sample at or before the instant (none before its first)."""
    instants = sorted({float(at) for history in histories for at, _ in history})
    cursors = [0] * len(histories)
    latest: list[Mapping[str, int] | None] = [None] * len(histories)
    merged = []
    for at in instants:
        for w, history in enumerate(histories):
            while cursors[w] < len(history) and float(history[cursors[w]][0]) <= at:
                latest[w] = history[cursors[w]][1]
                cursors[w] += 1
        merged.append([at, add_counts(counts for counts in latest if counts is not None)])
    return merged


def newest_marks(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Each underlying's mark from the worker whose market is the newest."""
    best: dict[str, Mapping[str, Any]] = {}
    for part in parts:
        for name, mark in part.items():
            if name not in best or mark["as_of"] > best[name]["as_of"]:
                best[name] = mark
    return dict(sorted(best.items()))


def _ranked(snapshots: Sequence[Snapshot], key: str, order: Any) -> list[dict[str, Any]]:
    """The rows of one list over every worker, ranked again."""
    return sorted((row for s in snapshots for row in s[key]), key=order)


def _ratio_key(row: Mapping[str, Any]) -> tuple[float, str]:
    """Lowest MM ratio first (no requirement: last)."""
    ratio = row["ratio_mm"]
    return (float("inf") if ratio is None else ratio, row["account"])


def _deficit_key(row: Mapping[str, Any]) -> tuple[float, str]:
    """Largest deficit first."""
    return (-row["deficit"], row["account"])
