"""Mark prices: weighted median, deviation guard, minimum sources, staleness, ordering, and the
snapshot a stream table keeps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.oracle import MarkOracle, SourceQuote, weighted_median
from engine.params import OracleParams


def oracle(**kw: float) -> MarkOracle:
    return MarkOracle(OracleParams(**kw))


def wm(prices: list[float], weights: list[float]) -> float:
    return weighted_median(np.array(prices), np.array(weights))


def test_weighted_median_by_hand() -> None:
    assert wm([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) == 2.0
    assert wm([1.0, 2.0, 3.0], [1.0, 1.0, 5.0]) == 3.0  # 5 of 7 on the top price
    assert wm([3.0, 1.0], [1.0, 1.0]) == 1.0  # an exact half: the smaller price
    assert wm([10.0, 20.0], [1.0, 3.0]) == 20.0
    assert wm([40.0, 10.0, 30.0, 20.0], [0.4, 0.1, 0.3, 0.2]) == 30.0  # 0.1+0.2 < 0.5 <= 0.6
    assert wm([10.0, 20.0, 30.0], [0.1, 0.2, 0.3]) == 20.0  # 0.3 = 0.6 / 2 despite rounding
    assert wm([5.0], [2.0]) == 5.0


def test_an_outlier_is_excluded_by_the_deviation_guard() -> None:
    o = oracle()
    for name, price, weight in (("a", 100.0, 1.0), ("b", 101.0, 2.0), ("c", 130.0, 10.0)):
        o.update("BTC", SourceQuote(name, price, weight, 10.0))
    result = o.mark("BTC", 11.0)
    assert result is not None and not result.stale
    assert result.sources_used == ("a", "b") and result.mark == 101.0  # c's weight is ignored
    assert abs(result.mark / 101.0 - 1.0) <= o.params.max_deviation


def test_stale_quotes_do_not_count() -> None:
    o = oracle()
    o.update("BTC", SourceQuote("a", 100.0, 1.0, 0.0))
    o.update("BTC", SourceQuote("b", 101.0, 3.0, 0.0))
    good = o.mark("BTC", 5.0)  # exactly max_age_s old: still fresh
    assert good is not None and good.mark == 101.0 and not good.stale
    o.update("BTC", SourceQuote("a", 90.0, 1.0, 8.0))
    stale = o.mark("BTC", 9.0)  # b is 9 s old: only a is fresh
    assert stale is not None and stale.stale and stale.mark == 101.0
    assert stale.sources_used == ("a",) and stale.ts == 9.0
    assert oracle().mark("ETH", 0.0) is None  # never had a mark


def test_a_stale_underlying_keeps_its_last_good_mark() -> None:
    o = oracle()
    o.update("ETH", SourceQuote("a", 4000.0, 1.0, 0.0))
    assert o.mark("ETH", 0.0) is None  # one source: stale, and no mark yet
    o.update("ETH", SourceQuote("b", 4010.0, 1.0, 1.0))
    assert o.mark("ETH", 1.0) == o.mark("ETH", 1.0)
    first = o.mark("ETH", 1.0)
    assert first is not None and first.mark == 4000.0 and not first.stale
    o.update("ETH", SourceQuote("a", 3000.0, 1.0, 2.0))  # 25% off the other: neither is kept
    for now in (2.0, 100.0):
        later = o.mark("ETH", now)
        assert later is not None and later.stale and later.mark == 4000.0


def test_min_sources_is_a_parameter() -> None:
    o = oracle(min_sources=3)
    for name in ("a", "b"):
        o.update("SOL", SourceQuote(name, 200.0, 1.0, 0.0))
    assert o.mark("SOL", 0.0) is None
    o.update("SOL", SourceQuote("c", 201.0, 1.0, 0.0))
    result = o.mark("SOL", 0.0)
    assert result is not None and not result.stale and result.mark == 200.0


def test_out_of_order_quotes_are_dropped() -> None:
    o = oracle()
    assert o.update("BTC", SourceQuote("a", 100.0, 1.0, 10.0))
    assert not o.update("BTC", SourceQuote("a", 50.0, 1.0, 9.0))
    assert o.quotes["BTC"]["a"].price == 100.0
    assert o.update("BTC", SourceQuote("a", 101.0, 1.0, 10.0))  # same time: replaces
    assert o.quotes["BTC"]["a"].price == 101.0
    assert o.update("BTC", SourceQuote("b", 99.0, 1.0, 1.0))  # other sources are independent


def test_bad_quotes_are_rejected() -> None:
    for price, weight, ts, field in ((0.0, 1.0, 0.0, "price"), (1.0, 0.0, 0.0, "weight")):
        with pytest.raises(ValueError, match=field):
            SourceQuote("a", price, weight, ts)
    with pytest.raises(ValueError, match="ts"):
        SourceQuote("a", 1.0, 1.0, float("nan"))


def test_snapshot_round_trip_through_json() -> None:
    o = oracle()
    o.update("BTC", SourceQuote("a", 100.0, 1.0, 10.0))
    o.update("BTC", SourceQuote("b", 100.2, 2.0, 10.0))
    o.update("ETH", SourceQuote("a", 4000.0, 1.0, 10.0))
    o.mark("BTC", 10.0)
    again = MarkOracle.restore(o.params, json.loads(json.dumps(o.snapshot())))
    assert again.quotes == o.quotes and again.last_marks == o.last_marks
    assert again.mark("BTC", 12.0) == o.mark("BTC", 12.0)


quotes = st.lists(
    st.tuples(st.floats(50.0, 150.0), st.floats(0.01, 100.0), st.floats(0.0, 10.0)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(qs=quotes)
def test_a_good_mark_is_a_kept_price_within_the_guard(qs: list[tuple[float, float, float]]) -> None:
    o = oracle()
    for i, (price, weight, ts) in enumerate(qs):
        o.update("BTC", SourceQuote(f"s{i}", price, weight, ts))
    now = 10.0
    result = o.mark("BTC", now)
    fresh = [p for p, _, ts in qs if now - ts <= o.params.max_age_s]
    if result is None:
        return
    assert not result.stale  # no earlier mark: a result is a good one
    assert len(result.sources_used) >= o.params.min_sources
    median = float(np.median(fresh))
    assert abs(result.mark / median - 1.0) <= o.params.max_deviation
    assert result.mark in [qs[int(s[1:])][0] for s in result.sources_used]
