"""Insurance fund accounting and ADL ranking: nothing socialised silently, to the cent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.insurance import AdlCandidate, FundEventKind, InsuranceFund, plan_adl, to_cents


def test_fees_payouts_and_shortfall_reconcile() -> None:
    fund = InsuranceFund()
    fund.fee(100.004, "a", "f1")
    fund.fee(50.005, "b", "f2")
    assert fund.fee(1.0, "b", "f2") is None  # replayed
    assert fund.balance_cents == 10_000 + 5_001
    result = fund.claim(200.0, "c", "k1")
    assert (result.paid_cents, result.shortfall_cents) == (15_001, 4_999)
    assert [e.kind for e in result.events] == [FundEventKind.PAYOUT, FundEventKind.SHORTFALL]
    assert fund.balance_cents == 0
    assert [e.balance_after_cents for e in fund.events] == [10_000, 15_001, 0, 0]
    assert fund.claim(10.0, "c", "k1").paid_cents == 0  # replayed claim


def test_adl_ranks_by_profit_ratio_times_leverage() -> None:
    cands = [
        AdlCandidate("low", "BTC-PERPETUAL", -1.0, 1_000.0, 50_000.0, 100_000.0, 51_000.0),
        AdlCandidate("high", "BTC-PERPETUAL", -1.0, 5_000.0, 10_000.0, 100_000.0, 15_000.0),
        AdlCandidate("same-side", "BTC-PERPETUAL", 2.0, 9_000.0, 1_000.0, 200_000.0, 10_000.0),
        AdlCandidate("loser", "BTC-PERPETUAL", -3.0, -100.0, 10_000.0, 300_000.0, 9_900.0),
    ]
    plan = plan_adl(123_456, 1.5, 90_000.0, cands)
    assert [r.account for r in plan] == ["high", "low"]
    assert plan[0].qty == 1.0 and plan[1].qty == 0.5
    assert sum(r.amount_cents for r in plan) == 123_456
    assert all(r.price == 90_000.0 for r in plan)


@given(
    shortfall=st.integers(1, 10**9),
    qtys=st.lists(st.floats(0.01, 10), min_size=1, max_size=8),
    bankrupt=st.floats(0.01, 20),
)
def test_adl_amounts_sum_to_the_shortfall(
    shortfall: int, qtys: list[float], bankrupt: float
) -> None:
    cands = [
        AdlCandidate(f"a{i}", "X", -q, 10.0 * (i + 1), 100.0, 1_000.0, 110.0)
        for i, q in enumerate(qtys)
    ]
    plan = plan_adl(shortfall, bankrupt, 1.0, cands)
    assert sum(r.amount_cents for r in plan) == shortfall
    assert sum(-r.qty for r in plan) <= bankrupt + 1e-9
    assert all(r.amount_cents >= 0 for r in plan)


def test_cents() -> None:
    assert to_cents(1.005) in (100, 101) and to_cents(-2.5) == -250 and to_cents(0.0) == 0
