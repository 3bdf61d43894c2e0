"""A partition's market state in the table: parts written only when their inputs changed,
merged again on loading, the format from before the split still read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from streams.market.state import MarketState, market_from_dict, market_to_dict
from streams.market.table import LIVE_KEY, PART_KEYS, MarketTable, load_market
from streams.records import MarketUpdateKind
from tests.streams.samples import perpetual_market

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)


class RecordingTable(dict[str, Any]):
    """A dict standing in for the Faust table, noting the keys written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.written.append(key)
        super().__setitem__(key, value)


def _market() -> MarketState:
    """An account side's market with one perpetual and prices."""
    side = MarketState()
    for update in perpetual_market(T0):
        side.apply(update)
    return side


def _keys(partition: int, *parts: str) -> list[str]:
    return [PART_KEYS[p].format(partition=partition) for p in parts]


def test_each_part_is_written_only_when_an_update_of_its_kind_came() -> None:
    table, state = RecordingTable(), _market()
    market = MarketTable(table)
    live = LIVE_KEY.format(partition=2)
    market.save(2, state, {"applied": 1})
    assert table.written == [*_keys(2, "reference", "vols"), live], "the first write is whole"
    for kinds, parts in (
        ((MarketUpdateKind.MARK,), ()),
        ((MarketUpdateKind.DEPTH,), ()),
        ((MarketUpdateKind.VOL,), ("vols",)),
        ((MarketUpdateKind.INSTRUMENT,), ("reference",)),
        ((MarketUpdateKind.PARAMS,), ("reference",)),
        ((), ()),
    ):
        table.written.clear()
        market.save(2, state, {"applied": 2}, kinds)
        assert table.written == [*_keys(2, *parts), live], kinds
    market.forget([2])
    table.written.clear()
    market.save(2, state, {"applied": 3}, (MarketUpdateKind.MARK,))
    assert table.written == [*_keys(2, "reference", "vols"), live], "whole again after a rebalance"
    assert "params" not in orjson.loads(table[live]) and orjson.loads(table[live])["applied"] == 3


def test_loading_merges_the_parts_into_the_same_market() -> None:
    table, state = RecordingTable(), _market()
    MarketTable(table).save(5, state, {"applied": 7, "outbox": []})
    data = load_market(table, 5)
    assert data is not None and data["applied"] == 7
    assert market_to_dict(market_from_dict(data)) == market_to_dict(state)
    assert load_market(table, 6) is None


def test_a_table_from_before_the_split_still_loads() -> None:
    table, state = RecordingTable(), _market()
    table[LIVE_KEY.format(partition=1)] = orjson.dumps(market_to_dict(state) | {"applied": 4})
    data = load_market(table, 1)
    assert data is not None and data["applied"] == 4
    assert market_to_dict(market_from_dict(data)) == market_to_dict(state)


def test_a_market_agent_taking_an_underlying_over_goes_on_as_its_predecessor() -> None:
    """The quotes, marks, EWMA and conflation of an underlying, read back by a fresh market
    state (a restarted or new worker), give the very updates the first one would have."""
    from datetime import UTC, datetime, timedelta

    import orjson

    from streams import records as r
    from streams.market.state import MarketState, load_underlying, underlying_to_dict

    t0 = datetime(2026, 11, 24, 8, tzinfo=UTC)

    def quote(n: int, source: str) -> r.OraclePrice:
        price = 100_000.0 * (1.0 + 0.003 * ((n * 7) % 5 - 2)) * (1.0005 if source == "b" else 1)
        return r.OraclePrice(
            source=source, underlying="BTC", price=price, ts=t0 + timedelta(seconds=n)
        )

    first = MarketState()
    for n in range(40):
        for source in ("a", "b", "c"):
            first.on_price(quote(n, source), f"{n}{source}")
    saved = orjson.dumps(underlying_to_dict(first, "BTC"))
    second = MarketState()
    load_underlying(second, "BTC", orjson.loads(saved))
    for n in range(40, 80):
        for source in ("a", "b", "c"):
            one = first.on_price(quote(n, source), f"{n}{source}")
            two = second.on_price(quote(n, source), f"{n}{source}")
            if one is None or two is None:
                assert one is two
                continue
            assert (one.mark, one.ewma_vol, one.stale) == (two.mark, two.ewma_vol, two.stale)
    assert first.ewma["BTC"] == second.ewma["BTC"]
