"""Validated mark prices from several oracle sources (spec section 7).

Per underlying the oracle keeps each source's latest accepted quote. At time ``now``:

1. fresh quotes are those with now - ts <= max_age_s (one stamped after ``now`` counts as fresh);
2. the unweighted median of the fresh prices is taken (the mean of the two middle ones for an even
   count), and only quotes within max_deviation of it (|p / median - 1| <= max_deviation) are kept;
3. with at least min_sources kept, the mark is their weighted median: prices sorted ascending, the
   smallest price at which the cumulative weight reaches half the total weight (so on an exact
   tie, e.g. two equal weights, the lower price). It is one of the kept prices, so it is within
   the deviation guard;
4. otherwise the underlying is STALE and keeps its last good mark (None if it never had one).

A quote older than the last accepted one from the same source is dropped (an equal time replaces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.arrays import FloatArray
from engine.params import OracleParams

TIE_RTOL = 1e-12
"""Relative slack on "cumulative weight >= half the total", so rounding cannot skip a tie."""


@dataclass(frozen=True)
class SourceQuote:
    """One source's price of an underlying, its weight and its time (epoch seconds)."""

    source: str
    price: float
    weight: float
    ts: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.price) and self.price > 0.0):
            raise ValueError(f"price: must be positive and finite, got {self.price}")
        if not (math.isfinite(self.weight) and self.weight > 0.0):
            raise ValueError(f"weight: must be positive and finite, got {self.weight}")
        if not math.isfinite(self.ts):
            raise ValueError(f"ts: must be finite, got {self.ts}")


@dataclass(frozen=True)
class MarkResult:
    """The mark of an underlying at ts, whether it is stale, and the sources validated at ts.

    When stale, ``mark`` is the last good mark and ``sources_used`` the (too few) sources that
    passed the freshness and deviation checks at ts.
    """

    underlying: str
    mark: float
    stale: bool
    sources_used: tuple[str, ...]
    ts: float


def weighted_median(prices: FloatArray, weights: FloatArray) -> float:
    """Smallest price at which the cumulative weight (prices ascending) reaches half the total."""
    p = np.asarray(prices, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or w.shape != p.shape:
        raise ValueError("prices and weights: want two non-empty 1-D arrays alike")
    order = np.argsort(p, kind="stable")
    cumulative = np.cumsum(w[order])
    half = 0.5 * cumulative[-1] * (1.0 - TIE_RTOL)
    index = min(int(np.searchsorted(cumulative, half, side="left")), p.size - 1)
    return float(p[order][index])


@dataclass
class MarkOracle:
    """Per underlying, per source latest quotes, and the last good mark of each underlying."""

    params: OracleParams
    quotes: dict[str, dict[str, SourceQuote]] = field(default_factory=dict)
    last_marks: dict[str, float] = field(default_factory=dict)

    def update(self, underlying: str, quote: SourceQuote) -> bool:
        """Take a quote; False (dropped) when older than the source's last accepted one."""
        sources = self.quotes.setdefault(underlying, {})
        previous = sources.get(quote.source)
        if previous is not None and quote.ts < previous.ts:
            return False
        sources[quote.source] = quote
        return True

    def validated(self, underlying: str, now: float) -> list[SourceQuote]:
        """The quotes that are fresh at ``now`` and within the deviation guard, by source name."""
        fresh = [
            q
            for q in self.quotes.get(underlying, {}).values()
            if now - q.ts <= self.params.max_age_s
        ]
        if not fresh:
            return []
        median = float(np.median([q.price for q in fresh]))
        kept = [q for q in fresh if abs(q.price / median - 1.0) <= self.params.max_deviation]
        return sorted(kept, key=lambda q: q.source)

    def mark(self, underlying: str, now: float) -> MarkResult | None:
        """The validated mark at ``now``; stale with the last good mark, or None if never good."""
        used = self.validated(underlying, now)
        names = tuple(q.source for q in used)
        if len(used) >= self.params.min_sources:
            mark = weighted_median(
                np.array([q.price for q in used]), np.array([q.weight for q in used])
            )
            self.last_marks[underlying] = mark
            return MarkResult(underlying, mark, False, names, now)
        last = self.last_marks.get(underlying)
        if last is None:
            return None
        return MarkResult(underlying, last, True, names, now)

    def snapshot(self) -> dict[str, Any]:
        """The state as plain JSON-able data (quotes as [price, weight, ts]) for a stream table."""
        return {
            "quotes": {
                u: {s: [q.price, q.weight, q.ts] for s, q in qs.items()}
                for u, qs in self.quotes.items()
            },
            "last_marks": dict(self.last_marks),
        }

    @classmethod
    def restore(cls, params: OracleParams, data: dict[str, Any]) -> MarkOracle:
        """The oracle from ``snapshot()``'s data (params are not part of the state)."""
        quotes = {
            str(u): {
                str(s): SourceQuote(str(s), float(p), float(w), float(t))
                for s, (p, w, t) in qs.items()
            }
            for u, qs in data.get("quotes", {}).items()
        }
        marks = {str(u): float(m) for u, m in data.get("last_marks", {}).items()}
        return cls(params, quotes, marks)
