"""The pieces that make a crash lose nothing, without a broker: the outbox (an applied input's
outputs kept with the state it changed, re-sent on its replay) and the cursor (inputs handled in
offset order, a hole found and filled)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from infra.settings import Settings
from streams import records as r
from streams.accounts.cursor import Cursor
from streams.accounts.outbox import Deliveries, Outbox, entry, outputs_of
from streams.accounts.outputs import InputRef, Output
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.codec import codec_from_settings
from streams.market.state import MarketState
from tests.streams.samples import perpetual_market

CODEC = codec_from_settings(Settings())
T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)
FILLS, BROADCAST = "spma.fills", "spma.market-broadcast"


def _processor() -> AccountProcessor:
    """A partition with BTC-PERPETUAL listed and marked, and one funded account."""
    proc = AccountProcessor(0, MarketState())
    for n, update in enumerate(perpetual_market(T0)):
        proc.on_market(update, InputRef(BROADCAST, 0, n))
    deposit = r.CollateralTransfer(
        transfer_id="d", account="acct", asset="USDC", amount=1e6, kind="DEPOSIT", ts=T0
    )
    proc.on_transfer(deposit, InputRef("spma.collateral", 0, 0))
    return proc


def _fill(n: int) -> r.Fill:
    return r.Fill(
        fill_id=f"f{n}",
        account="acct",
        instrument="BTC-PERPETUAL",
        side="BUY",
        qty=0.1,
        price=100_000.0,
        liquidity="TAKER",
        ts=T0 + timedelta(seconds=n),
    )


def test_an_applied_fill_keeps_its_outputs_and_a_replay_finds_them_byte_for_byte() -> None:
    proc, outbox = _processor(), Outbox()
    ref = InputRef(FILLS, 0, 7)
    assert not outbox.receive(proc, ref, _fill(7))  # handled now, and not a replay
    outputs = proc.on_fill(_fill(7), ref)
    encoded, shared = outbox.file(proc, ref, outputs, CODEC, {"acct"})
    assert not shared and [e.topic for e in encoded] == ["margin-status"]
    assert outbox.stored(proc, ref, _fill(7)) == encoded
    # the record goes through the table as JSON, and a new process reads it again
    restored = PortfolioRecord.from_dict(PortfolioRecord.to_dict(proc.records["acct"]))
    proc.records["acct"] = restored
    later = Outbox()
    assert later.replayed(proc, ref, _fill(7))
    assert later.stored(proc, ref, _fill(7)) == encoded
    assert not later.replayed(proc, InputRef(FILLS, 0, 8), _fill(8))


def test_entries_leave_the_outbox_once_acknowledged_and_stay_while_pending() -> None:
    deliveries = Deliveries()
    box = [entry(FILLS, 0, n, []) for n in (3, 5, 9)]
    assert deliveries.keep(box) == box, "nothing known of this partition yet: keep everything"
    deliveries.handling(FILLS, 0, 5)  # the first input read since the assignment: 5
    loop = asyncio.new_event_loop()
    try:
        pending = loop.create_future()
        deliveries.expect(FILLS, 0, 5, 1)
        deliveries.watch(FILLS, 0, 5, [pending])
        # 3 came before the first offset read (committed, so flushed); 5 is in flight; 9 was
        # never handled here (a replay will send it again)
        assert [e[2] for e in deliveries.keep(box)] == [5, 9]
        pending.set_result(None)
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert [e[2] for e in deliveries.keep(box)] == [9]
    deliveries.reset([0])
    assert deliveries.keep(box) == box


def test_outputs_owned_by_no_record_go_to_the_partition_outbox() -> None:
    proc, outbox = _processor(), Outbox()
    ref = InputRef(BROADCAST, 0, 40)
    proof = r.SolvencyProof(
        epoch=1, partition=0, root_hash="00" * 32, total_liabilities_cents=0, account_count=0, ts=T0
    )
    encoded, shared = outbox.file(proc, ref, [Output("solvency-proofs", "1", proof)], CODEC, set())
    assert shared and outbox.dump(0)["outbox"][0][:3] == [BROADCAST, 0, 40]
    outbox.market_applied(ref)
    state = outbox.dump(0)
    restored = Outbox()
    restored.load(0, state)
    update = r.MarketUpdate(update_id="u", kind="MARK", seq=1, ts=T0, underlying="BTC", mark=1.0)
    assert restored.replayed(proc, ref, update)
    assert restored.stored(proc, ref, update) == encoded
    assert outputs_of(state["outbox"], BROADCAST, 0, 41) == []


def test_the_cursor_finds_a_hole_and_takes_replays() -> None:
    cursor = Cursor()
    cursor.load(0, {FILLS: 99, BROADCAST: 4})
    cursor.load_rejected(0, {FILLS: 101})
    assert cursor.check(FILLS, 0, 102) is None  # the next one
    assert cursor.check(FILLS, 0, 50) is None  # a replay
    assert cursor.check(FILLS, 0, 110) == 102  # 102 to 109 are missing
    for offset in range(102, 110):  # read from the broker and handled
        cursor.accept(FILLS, 0, offset)
        cursor.handled(FILLS, 0, offset)
    assert cursor.check(FILLS, 0, 110) is None
    assert cursor.check(BROADCAST, 0, 5) is None and cursor.check(BROADCAST, 0, 6) == 5
    assert cursor.check(FILLS, 1, 0) is None and cursor.check(FILLS, 1, 3) == 0
    assert cursor.reject(FILLS, 0, 120) == {FILLS: 120}
    cursor.reset([0])
    assert cursor.check(FILLS, 0, 7) == 0, "forgotten: read again from the table"


def test_outputs_expected_by_a_batch_stay_in_the_outbox_until_acknowledged() -> None:
    """A batch files an input's outputs before it hands them to the producer: a later input of
    the same batch must not prune them, whatever the horizon says."""
    deliveries = Deliveries()
    box = [entry(FILLS, 0, 5, []), entry(FILLS, 0, 6, [])]
    deliveries.handling(FILLS, 0, 5)
    deliveries.expect(FILLS, 0, 5, 2)  # filed, not sent yet
    deliveries.handling(FILLS, 0, 6)  # the next input: 5 is within the horizon
    deliveries.expect(FILLS, 0, 6, 1)
    assert [e[2] for e in deliveries.keep(box)] == [5, 6]
    loop = asyncio.new_event_loop()
    try:
        sent = [loop.create_future(), loop.create_future()]
        deliveries.watch(FILLS, 0, 5, sent)
        sent[0].set_result(None)
        loop.run_until_complete(asyncio.sleep(0))
        assert [e[2] for e in deliveries.keep(box)] == [5, 6], "one of two acknowledged"
        sent[1].set_result(None)
        loop.run_until_complete(asyncio.sleep(0))
        assert [e[2] for e in deliveries.keep(box)] == [6]
        deliveries.reset([0])  # revoked before the batch sent it: watching it is a no-op
        late = loop.create_future()
        deliveries.watch(FILLS, 0, 6, [late])
        late.set_result(None)
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert deliveries.pending == {}
