"""The fund owner's outbox without a broker: a claims-topic input's outputs kept with the fund's
state until acknowledged, and sent again byte for byte when the input is replayed."""

from __future__ import annotations

import asyncio

import orjson

from streams.accounts.outbox import Encoded
from streams.fund.outbox import FundOutbox

CLAIMS = "spma.insurance-claims"
PAYOUT = Encoded("collateral", "acct-1", b"\x00payout")
EVENT = Encoded("insurance-fund", "USD", b"\x00event")


def _through_the_table(outbox: FundOutbox) -> FundOutbox:
    """What a worker restoring the fund after a crash finds (the value goes through JSON)."""
    later = FundOutbox()
    later.load(orjson.loads(orjson.dumps({"balance_cents": 1} | outbox.dump())))
    return later


def test_a_claim_applied_before_a_crash_sends_its_payout_again_on_replay() -> None:
    outbox = FundOutbox()
    outbox.handling(CLAIMS, 41)
    outbox.file(CLAIMS, 41, [PAYOUT, EVENT])  # state written with the outputs, then the crash
    later = _through_the_table(outbox)
    later.handling(CLAIMS, 41)  # the claim comes again: it was never committed
    assert later.replayed(41) and not later.replayed(42)
    assert later.resend(CLAIMS, 41) == [PAYOUT, EVENT]
    assert later.resend(CLAIMS, 40) == [], "nothing kept for an input that produced nothing"


def test_outputs_leave_the_outbox_once_acknowledged_and_stay_while_not() -> None:
    outbox = FundOutbox()
    loop = asyncio.new_event_loop()
    try:
        outbox.handling(CLAIMS, 7)
        outbox.file(CLAIMS, 7, [PAYOUT])
        sent = loop.create_future()
        outbox.watch(CLAIMS, 7, [sent])
        outbox.handling(CLAIMS, 8)
        outbox.file(CLAIMS, 8, [EVENT])
        assert [e[2] for e in outbox.dump()["outbox"]] == [7, 8], "7 is not acknowledged yet"
        sent.set_result(None)
        loop.run_until_complete(asyncio.sleep(0))
        assert [e[2] for e in outbox.dump()["outbox"]] == [8]
        failed = loop.create_future()
        outbox.watch(CLAIMS, 8, [failed])
        failed.set_exception(RuntimeError("broker gone"))
        loop.run_until_complete(asyncio.sleep(0))
        assert [e[2] for e in outbox.dump()["outbox"]] == [8], "never delivered: kept"
    finally:
        loop.close()
    assert outbox.dump()["applied"] == 8


def test_a_fund_table_value_from_before_the_outbox_loads_as_nothing_applied() -> None:
    outbox = FundOutbox()
    outbox.load({"currency": "USD", "balance_cents": 5})
    assert outbox.applied == -1 and outbox.entries == []
    outbox.load(None)
    assert not outbox.replayed(0)
