"""Inputs that race ahead of their reference data (streams/accounts/holding.py), without Kafka:
held in the record, released in order when the listing or the price comes (through the same
checks), refused with their reason once the partition's event time passes the deadline; the
account is margined meanwhile, and a replay holds nothing twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.errors import InputRejected
from streams.market.state import MarketState
from streams.records import DlqReason
from tests.streams.test_validation import T0, _deposit, _fill, _partition

HOLD_S = MarketState().params.inputs.hold_s


def _quotes(
    proc: AccountProcessor, underlying: str, price: float, seconds: float
) -> list[r.Record]:
    """Three sources quote an underlying ``seconds`` after T0: what the partition emits."""
    agent = MarketState(proc.market.params)
    out: list[r.Record] = []
    for n, source in enumerate(("a", "b", "c")):
        quote = r.OraclePrice(
            source=source, underlying=underlying, price=price, ts=T0 + timedelta(seconds=seconds)
        )
        update = agent.on_price(quote, f"{underlying}-{source}-{seconds}")
        if update is not None:
            ref = InputRef("mb", 0, 1000 + int(seconds) * 10 + n)
            out += [o.record for o in proc.on_market(update, ref)]
    return out


def _listing(proc: AccountProcessor, name: str, seconds: float) -> list[r.Record]:
    agent = MarketState(proc.market.params)
    listing = r.InstrumentRecord(
        name=name,
        kind="PERPETUAL",
        underlying=name.split("-")[0],
        ts=T0 + timedelta(seconds=seconds),
    )
    update = agent.on_instrument(listing, name)
    return [o.record for o in proc.on_market(update, InputRef("mb", 0, 5000 + int(seconds)))]


def _dlq(records: list[r.Record]) -> list[r.DlqRecord]:
    return [x for x in records if isinstance(x, r.DlqRecord)]


def test_a_deposit_of_a_coin_nobody_prices_goes_to_the_dlq_once_the_marks_pass_its_deadline() -> (
    None
):
    proc = _partition()
    doge = _deposit(transfer_id="doge", asset="DOGE", amount=100.0)
    proc.apply_transfer(doge, InputRef("collateral", 0, 7))
    assert not _dlq(_quotes(proc, "BTC", 100_000.0, HOLD_S - 5))
    dlq = _dlq(_quotes(proc, "BTC", 100_100.0, HOLD_S + 5))
    assert [(d.reason, d.offset) for d in dlq] == [(DlqReason.UNKNOWN_ASSET, 7)]
    assert "DOGE" not in proc.records["x"].collateral and not proc.records["x"].held


def test_a_deposit_of_a_coin_nobody_prices_yet_is_held_then_released_by_its_price() -> None:
    proc = _partition()
    applied = proc.apply_transfer(
        _deposit(transfer_id="sol", asset="SOL", amount=100.0), InputRef("collateral", 0, 7)
    )
    assert applied is not None and not applied.says_status
    assert proc.settle([applied]) == [[]]  # nothing to say while held
    x = proc.records["x"]
    assert "SOL" not in x.collateral and len(x.held) == 1 and "x" not in proc.unpriced
    assert (
        proc.apply_transfer(_deposit(transfer_id="sol", asset="SOL"), InputRef("collateral", 0, 7))
        is None
    )
    said = _quotes(proc, "SOL", 200.0, 10)
    assert x.collateral["SOL"] == 100.0 and not x.held and not proc.holding
    status = [s for s in said if isinstance(s, r.MarginStatus) and s.reason == "TRANSFER"]
    assert [(s.account, s.input_topic, s.input_offset) for s in status] == [("x", "collateral", 7)]
    assert "x" in proc.touched


def test_a_fill_nobody_lists_goes_to_the_dlq_at_the_deadline_the_account_margined_meanwhile() -> (
    None
):
    proc = _partition()
    doge = _fill(fill_id="doge", instrument="DOGE-PERPETUAL", price=0.2, qty=1000.0, fee=0.0)
    assert proc.apply_fill(doge, InputRef("fills", 0, 11), b"\x00as consumed") is not None
    with pytest.raises(InputRejected) as err:  # its id again, at another offset
        proc.apply_fill(doge, InputRef("fills", 0, 13))
    assert err.value.reason is DlqReason.DUPLICATE
    btc = proc.on_fill(_fill(fill_id="btc", ts=T0 + timedelta(seconds=2)), InputRef("fills", 0, 12))
    assert any(isinstance(o.record, r.MarginStatus) for o in btc)  # margined without it
    assert not _dlq(_listing(proc, "ETH-PERPETUAL", HOLD_S - 5))  # before the deadline: held
    assert not _dlq(_quotes(proc, "BTC", 100_100.0, 10 * HOLD_S))  # prices alone move on
    assert proc.records["x"].held
    dlq = _dlq(_listing(proc, "SOL-PERPETUAL", HOLD_S + 5))  # the listings moved on without it
    assert [(d.reason, d.topic, d.partition, d.offset) for d in dlq] == [
        (DlqReason.UNKNOWN_INSTRUMENT, "fills", 0, 11)
    ]
    assert dlq[0].value == b"\x00as consumed" and dlq[0].key == b"x"
    x = proc.records["x"]
    assert (
        not x.held and "DOGE-PERPETUAL" not in x.positions and set(x.positions) == {"BTC-PERPETUAL"}
    )


def test_a_listing_releases_its_fills_in_order_through_the_checks() -> None:
    proc = _partition()
    _quotes(proc, "ETH", 4_000.0, 1)
    first = _fill(
        fill_id="e1", instrument="ETH-PERPETUAL", price=4_000.0, ts=T0 + timedelta(seconds=3)
    )
    wild = _fill(
        fill_id="e2", instrument="ETH-PERPETUAL", price=40_000.0, ts=T0 + timedelta(seconds=4)
    )
    second = _fill(
        fill_id="e3",
        instrument="ETH-PERPETUAL",
        side="SELL",
        qty=0.5,
        price=4_100.0,
        fee=1.0,
        ts=T0 + timedelta(seconds=5),
    )
    for n, fill in enumerate((first, wild, second)):
        proc.apply_fill(fill, InputRef("fills", 0, 20 + n))
    assert len(proc.records["x"].held) == 3
    said = _listing(proc, "ETH-PERPETUAL", 6)
    dlq = _dlq(said)
    assert [(d.reason, d.offset) for d in dlq] == [
        (DlqReason.OUT_OF_RANGE, 21)
    ]  # the band, now it has a mark
    pos = proc.records["x"].positions["ETH-PERPETUAL"]
    assert (pos.qty, pos.entry) == (0.5, 4_000.0)
    fills = [s.input_offset for s in said if isinstance(s, r.MarginStatus) and s.reason == "FILL"]
    assert fills == [20, 22]


def test_held_inputs_survive_the_table() -> None:
    proc = _partition()
    proc.apply_fill(
        _fill(fill_id="d", instrument="DOGE-PERPETUAL", price=0.2, fee=0.0),
        InputRef("fills", 0, 30),
    )
    stored = {a: PortfolioRecord.from_json(rec.to_json()) for a, rec in proc.records.items()}
    again = AccountProcessor(0, proc.market)
    again.load(stored)
    assert again.holding == {"x"} and stored["x"].held == proc.records["x"].held
    assert (
        again.apply_fill(
            _fill(fill_id="d", instrument="DOGE-PERPETUAL", price=0.2, fee=0.0),
            InputRef("fills", 0, 30),
        )
        is None
    )
