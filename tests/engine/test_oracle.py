"""Mark prices: weighted median, deviation guard, minimum sources, staleness, ordering."""

from __future__ import annotations

import numpy as np
import pytest

from engine.oracle import MarkOracle, SourceQuote, weighted_median
from engine.params import OracleParams


def oracle(**kw: float) -> MarkOracle:
    return MarkOracle(OracleParams(**kw))


def test_weighted_median_by_hand() -> None:
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])) == 2.0
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 5.0])) == 3.0
    assert weighted_median(np.array([3.0, 1.0]), np.array([1.0, 1.0])) == 1.0


def test_an_outlier_is_excluded_by_the_deviation_guard() -> None:
    o = oracle()
    for name, price in (("a", 100.0), ("b", 100.5), ("c", 130.0)):
        o.update("BTC", SourceQuote(name, price, 1.0, 10.0))
    result = o.mark("BTC", 11.0)
    assert result is not None and not result.stale
    assert result.sources_used == ("a", "b") and result.mark == 100.0


def test_one_fresh_source_is_stale_and_keeps_the_last_mark() -> None:
    o = oracle()
    o.update("BTC", SourceQuote("a", 100.0, 1.0, 0.0))
    o.update("BTC", SourceQuote("b", 101.0, 3.0, 0.0))
    good = o.mark("BTC", 1.0)
    assert good is not None and good.mark == 101.0 and not good.stale
    o.update("BTC", SourceQuote("a", 90.0, 1.0, 8.0))
    stale = o.mark("BTC", 9.0)  # b is 9 s old: only a is fresh
    assert stale is not None and stale.stale and stale.mark == 101.0
    assert oracle().mark("ETH", 0.0) is None


def test_out_of_order_quotes_are_dropped() -> None:
    o = oracle()
    assert o.update("BTC", SourceQuote("a", 100.0, 1.0, 10.0))
    assert not o.update("BTC", SourceQuote("a", 50.0, 1.0, 9.0))
    assert o.quotes["BTC"]["a"].price == 100.0


def test_snapshot_round_trip() -> None:
    o = oracle()
    o.update("BTC", SourceQuote("a", 100.0, 1.0, 10.0))
    o.update("BTC", SourceQuote("b", 100.0, 1.0, 10.0))
    o.mark("BTC", 10.0)
    again = MarkOracle.restore(o.params, o.snapshot())
    assert again.mark("BTC", 10.0) == o.mark("BTC", 10.0)
    assert again.last_marks == pytest.approx(o.last_marks)
