"""A batch's bookkeeping: waves of distinct accounts per partition, sends in input order."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.accounts.batch import AccountBatch
from streams.accounts.outbox import Encoded
from streams.accounts.outputs import Applied, InputRef
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.market.state import MarketState

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)


def _applied(account: str, offset: int) -> Applied:
    return Applied(PortfolioRecord(account), "FILL", InputRef("fills", 3, offset), T0)


def test_a_wave_holds_one_input_per_account_in_order_with_its_processor() -> None:
    batch = AccountBatch()
    proc = AccountProcessor(3, MarketState())
    batch.join(proc, _applied("a", 10))
    batch.join(proc, _applied("b", 11))
    assert batch.waiting(3, "a") and batch.waiting(3, "b")
    assert not batch.waiting(4, "a"), "waves are per partition"
    wave = batch.take_wave(3)
    assert wave is not None and wave.processor is proc
    assert [a.ref.offset for a in wave.inputs.values()] == [10, 11]
    assert not batch.waiting(3, "a") and batch.take_wave(3) is None


def test_sends_keep_input_order_and_skip_inputs_with_nothing_to_send() -> None:
    batch = AccountBatch()
    out = Encoded("margin-status", "a", b"x")
    batch.send(InputRef("fills", 3, 1), [out])
    batch.send(InputRef("fills", 3, 2), [])
    batch.send(InputRef("fills", 3, 0), [out])
    assert [ref.offset for ref, _ in batch.sends] == [1, 0]
