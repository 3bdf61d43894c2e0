"""Validated mark prices from several oracle sources (section 7).

Mark = weighted median of the sources that are fresh (at most max_age_s old) and within
max_deviation of the unweighted median of the fresh ones; fewer than min_sources such sources
leaves the underlying STALE with its last mark. An update older than the last accepted one from
the same source is dropped. The weighted median is the smallest price at which the cumulative
weight (prices sorted) reaches half the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.params import OracleParams


@dataclass(frozen=True)
class SourceQuote:
    """One source's price of an underlying, its weight and its time (epoch seconds)."""

    source: str
    price: float
    weight: float
    ts: float


@dataclass(frozen=True)
class MarkResult:
    """The mark of an underlying, whether it is stale, and the sources it came from."""

    underlying: str
    mark: float
    stale: bool
    sources_used: tuple[str, ...]
    ts: float


def weighted_median(prices: np.ndarray, weights: np.ndarray) -> float:
    """Smallest price where the cumulative weight reaches half the total."""
    order = np.argsort(prices, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, 0.5 * cumulative[-1] - 1e-12))
    return float(prices[order][index])


@dataclass
class MarkOracle:
    """Per underlying, per source latest quotes, and the last good mark."""

    params: OracleParams
    quotes: dict[str, dict[str, SourceQuote]] = field(default_factory=dict)
    last_marks: dict[str, float] = field(default_factory=dict)

    def update(self, underlying: str, quote: SourceQuote) -> bool:
        """Take a quote; False when it is older than the source's last accepted one."""
        sources = self.quotes.setdefault(underlying, {})
        previous = sources.get(quote.source)
        if previous is not None and quote.ts < previous.ts:
            return False
        sources[quote.source] = quote
        return True

    def mark(self, underlying: str, now: float) -> MarkResult | None:
        """The validated mark at `now`, or None when no mark was ever good."""
        quotes = [
            q
            for q in self.quotes.get(underlying, {}).values()
            if now - q.ts <= self.params.max_age_s
        ]
        used: list[SourceQuote] = []
        if quotes:
            median = float(np.median([q.price for q in quotes]))
            used = [q for q in quotes if abs(q.price / median - 1.0) <= self.params.max_deviation]
        if len(used) >= self.params.min_sources:
            prices = np.array([q.price for q in used])
            weights = np.array([q.weight for q in used])
            mark = weighted_median(prices, weights)
            self.last_marks[underlying] = mark
            names = tuple(sorted(q.source for q in used))
            return MarkResult(underlying, mark, False, names, now)
        last = self.last_marks.get(underlying)
        if last is None:
            return None
        return MarkResult(underlying, last, True, tuple(sorted(q.source for q in used)), now)

    def snapshot(self) -> dict[str, Any]:
        """Plain data for a table."""
        return {
            "quotes": {
                u: {s: [q.price, q.weight, q.ts] for s, q in qs.items()}
                for u, qs in self.quotes.items()
            },
            "last_marks": dict(self.last_marks),
        }

    @classmethod
    def restore(cls, params: OracleParams, data: dict[str, Any]) -> MarkOracle:
        """Inverse of snapshot."""
        quotes = {
            u: {s: SourceQuote(s, p, w, t) for s, (p, w, t) in qs.items()}
            for u, qs in data.get("quotes", {}).items()
        }
        return cls(params, quotes, dict(data.get("last_marks", {})))
