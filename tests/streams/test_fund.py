"""The fund's single owner: fees in, payouts and ADL out, reconciled to the cent, restartable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.insurance import MAX_CENTS, deficit_cents, to_cents
from streams import records as r
from streams.errors import InputRejected
from streams.fund.owner import FundOwner, check_fund_input

TS = datetime(2026, 11, 24, 8, tzinfo=UTC)


def _fee(n: int, amount: float) -> r.LiquidationFee:
    return r.LiquidationFee(fee_id=f"fee-{n}", account="x", amount=amount, fill_id=f"f{n}", ts=TS)


def _claim(
    cid: str, deficit: float, qty: float = 2.0, account: str = "broke", received: float = 0.0
) -> r.InsuranceClaim:
    position = r.ClaimPosition(instrument="BTC-PERPETUAL", qty=qty, mark=60_000.0, unit_value=1.0)
    return r.InsuranceClaim(
        claim_id=cid,
        account=account,
        deficit=deficit,
        payouts_received=received,
        positions=[position],
        ts=TS,
    )


def _candidate(account: str, qty: float, score: float, partition: int = 0) -> r.AdlCandidate:
    return r.AdlCandidate(
        account=account,
        instrument="BTC-PERPETUAL",
        qty=qty,
        rank_score=score,
        partition=partition,
        ts=TS,
    )


def _topics(outputs: list) -> dict[str, list]:
    by: dict[str, list] = {}
    for o in outputs:
        by.setdefault(o.topic, []).append(o.record)
    return by


def test_fee_then_a_claim_the_fund_covers_pays_out_and_closes_at_the_mark() -> None:
    owner = FundOwner()
    owner.on_candidate(_candidate("short-1", -5.0, 3.0))
    assert owner.on_fee(_fee(1, 1_000.0))[0].record.balance_after == 1_000.0
    assert owner.on_fee(_fee(1, 1_000.0)) == []  # the same fee once
    out = _topics(owner.on_claim(_claim("c1", 400.0)))
    (payout_event,) = out["insurance-fund"]
    assert payout_event.kind.value == "PAYOUT" and payout_event.balance_after == 600.0
    (transfer,) = out["collateral"]
    assert transfer.kind.value == "INSURANCE_PAYOUT" and transfer.amount == 400.0
    (order,) = out["adl"]
    assert (order.account, order.side.value, order.qty) == ("short-1", "BUY", 2.0)
    assert order.price == 60_000.0 and order.amount == 0.0
    assert order.counterparty_account == "broke"


def test_a_shortfall_is_absorbed_by_adl_at_the_bankruptcy_price_highest_score_first() -> None:
    owner = FundOwner()
    owner.on_fee(_fee(1, 100.0))
    owner.on_candidate(_candidate("low", -5.0, 1.0))
    owner.on_candidate(_candidate("high", -1.5, 9.0, partition=1))
    out = _topics(owner.on_claim(_claim("c1", 500.0)))
    kinds = [e.kind.value for e in out["insurance-fund"]]
    assert kinds == ["PAYOUT", "SHORTFALL"]
    orders = out["adl"]
    assert [o.account for o in orders] == ["high", "low"]
    assert sum(o.qty for o in orders) == pytest.approx(2.0)
    # the long is sold at the bankruptcy price: 400 USD over 2 contracts above the mark
    assert all(o.price == pytest.approx(60_200.0) for o in orders)
    assert sum(to_cents(o.amount) for o in orders) == 40_000
    assert owner.deficits_cents == owner.payouts_cents + owner.adl_cents


def test_a_claim_before_any_candidate_waits_and_is_closed_when_they_come() -> None:
    owner = FundOwner()
    out = _topics(owner.on_claim(_claim("c1", 250.0)))
    assert "adl" not in out and owner.pending
    owner.on_candidate(_candidate("short-1", -1.0, 2.0))
    first = owner.retry()
    assert [o.record.qty for o in first] == [1.0] and owner.pending  # one of two covered
    owner.on_candidate(_candidate("short-2", -4.0, 1.0, partition=2))
    second = owner.retry()
    assert [o.record.qty for o in second] == [1.0] and not owner.pending
    absorbed = sum(to_cents(o.record.amount) for o in first + second)
    assert absorbed == 25_000 == owner.adl_cents
    assert len({o.record.adl_id for o in first + second}) == 2


def test_a_newer_batch_replaces_a_partitions_candidates() -> None:
    owner = FundOwner()
    owner.on_candidate(_candidate("old", -5.0, 3.0))
    newer = _candidate("new", -5.0, 3.0).model_copy(update={"ts": TS.replace(minute=1)})
    owner.on_candidate(newer)
    (order,) = [o.record for o in owner.on_claim(_claim("c1", 10.0)) if o.topic == "adl"]
    assert order.account == "new"


def test_state_survives_a_restart() -> None:
    owner = FundOwner()
    owner.on_fee(_fee(1, 50.0))
    owner.on_claim(_claim("c1", 80.0))
    restored = FundOwner.from_dict(owner.to_dict())
    assert restored.to_dict() == owner.to_dict()
    assert restored.on_claim(_claim("c1", 80.0)) == []  # a replayed claim is not paid twice
    restored.on_candidate(_candidate("short-1", -5.0, 1.0))
    assert [o.topic for o in restored.retry()] == ["adl"]


@settings(max_examples=60, deadline=None)
@given(
    fees=st.lists(st.floats(0.01, 5_000.0), max_size=6),
    deficits=st.lists(st.floats(0.01, 20_000.0), min_size=1, max_size=6),
    qtys=st.lists(st.floats(0.1, 10.0), min_size=1, max_size=4),
)
def test_deficits_equal_payouts_plus_adl_to_the_cent(
    fees: list[float], deficits: list[float], qtys: list[float]
) -> None:
    owner = FundOwner()
    for i, q in enumerate(qtys):
        owner.on_candidate(_candidate(f"s{i}", -q, float(i + 1), partition=i))
    owner.on_candidate(_candidate("deep", -1_000.0, 0.5, partition=9))  # enough for every claim
    for n, amount in enumerate(fees):
        owner.on_fee(_fee(n, amount))
    outputs = []
    for n, deficit in enumerate(deficits):
        outputs += owner.on_claim(_claim(f"c{n}", deficit, qty=1.0 + n, account=f"broke-{n}"))
    by = _topics(outputs)
    paid = sum(to_cents(e.amount) for e in by["insurance-fund"] if e.kind.value == "PAYOUT")
    short = sum(to_cents(e.amount) for e in by["insurance-fund"] if e.kind.value == "SHORTFALL")
    adl = sum(to_cents(o.amount) for o in by.get("adl", []))
    assert sum(deficit_cents(d) for d in deficits) == paid + short
    assert short == adl and not owner.pending
    assert owner.fund.balance_cents == sum(to_cents(f) for f in fees) - paid


def test_a_position_no_counterparty_takes_goes_to_the_book_after_the_timeout() -> None:
    owner = FundOwner(pending_timeout_s=30.0, takeover_slippage=0.5)
    owner.on_fee(_fee(1, 100.0))
    topics = [o.topic for o in owner.on_claim(_claim("c1", 300.0))]
    assert sorted(topics) == ["collateral", "insurance-fund", "insurance-fund"]
    assert owner.pending
    later = _fee(2, 1.0).model_copy(update={"ts": TS.replace(second=31)})
    owner.on_fee(later)
    assert not [o for o in owner.retry() if o.topic == "liquidations"]  # not while reading
    (order,) = [o.record for o in owner.retry(takeover=True)]
    assert isinstance(order, r.LiquidationOrder) and order.reason == "BANKRUPTCY"
    assert (order.side.value, order.qty, order.limit_price) == ("SELL", 2.0, 30_000.0)
    assert not owner.pending and owner.uncovered_cents == 20_000
    assert owner.deficits_cents == owner.payouts_cents + owner.adl_cents + owner.uncovered_cents


def test_a_claim_repeated_before_its_payout_landed_is_not_paid_twice() -> None:
    """The account claims again (its deficit unchanged: the payout is still on its way); the
    fund takes off what it paid beyond what the account says it received."""
    owner = FundOwner()
    owner.on_fee(_fee(1, 1_000.0))
    first = _topics(owner.on_claim(_claim("c1", 300.0, qty=0.0)))
    assert [t.amount for t in first["collateral"]] == [300.0]
    assert owner.on_claim(_claim("c2", 300.0, qty=0.0)) == []  # in flight: nothing more owed
    # the deficit grew by 50 before the payout landed: only the 50 is paid
    more = _topics(owner.on_claim(_claim("c3", 350.0, qty=0.0)))
    assert [t.amount for t in more["collateral"]] == [50.0]
    # both payouts landed and the account is short again by 20: 20 is paid
    again = _topics(owner.on_claim(_claim("c4", 20.0, qty=0.0, received=350.0)))
    assert [t.amount for t in again["collateral"]] == [20.0]
    assert owner.fund.balance_cents == 100_000 - 37_000
    assert owner.deficits_cents == owner.payouts_cents == 37_000
    restored = FundOwner.from_dict(owner.to_dict())
    assert restored.paid_by_account == {"broke": 37_000}


@given(deficit=st.floats(min_value=1e-6, allow_nan=False, allow_infinity=False))
@settings(max_examples=200, deadline=None)
def test_any_deficit_a_claim_can_carry_is_booked_or_refused_never_a_crash(deficit: float) -> None:
    """A claim the fund's cents can book exactly is paid or deleveraged; a larger one is
    refused (OUT_OF_RANGE) before the ledger is touched."""
    owner = FundOwner(currency="USD", settlement_asset="USD")
    owner.on_fee(_fee(1, 100.0))
    claim = _claim("a", deficit)
    if deficit * 100.0 > MAX_CENTS:
        with pytest.raises(InputRejected) as err:
            check_fund_input(claim)
        assert err.value.reason is r.DlqReason.OUT_OF_RANGE
        return
    check_fund_input(claim)
    outputs = owner.on_claim(claim)
    assert all(o.record is not None for o in outputs)
    assert owner.fund.balance_cents >= 0


def test_a_fee_or_position_beyond_the_cents_is_refused() -> None:
    with pytest.raises(InputRejected):
        check_fund_input(_fee(2, 1e30))
    big = r.ClaimPosition(instrument="BTC-PERPETUAL", qty=1e20, mark=1e5, unit_value=1.0)
    with pytest.raises(InputRejected):
        check_fund_input(_claim("a", 10.0).model_copy(update={"positions": [big]}))
