"""The risk console's pieces that need no worker: merging the workers' snapshots, the state
history's sampling, and the fund journal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streams.accounts.outputs import Output
from streams.agents.console_history import StateHistory
from streams.agents.console_merge import add_histories, merge
from streams.fund.journal import FundJournal
from streams.records import CollateralTransfer, FundEventKind, InsuranceFundEvent
from tests.streams.samples import SAMPLES

TS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _snapshot(worker: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "worker": worker,
        "partitions": [],
        "rebalancing": False,
        "event_time": None,
        "states": {},
        "history": [],
        "closest": [],
        "deficits": [],
        "fund": None,
        "outputs": {},
        "dlq": {},
        "marks": {},
    }
    return base | over


def _row(account: str, ratio: float | None, deficit: float = 0.0) -> dict[str, Any]:
    return {"account": account, "ratio_mm": ratio, "deficit": deficit, "state": "HEALTHY"}


def test_merge_adds_counts_and_reranks_over_workers() -> None:
    a = _snapshot(
        "http://a",
        partitions=[0, 2],
        event_time=100.0,
        states={"HEALTHY": 3, "BANKRUPT": 1},
        closest=[_row("a1", 1.2), _row("a2", 3.0)],
        deficits=[_row("a9", None, 50.0)],
        outputs={"adl": 2, "margin-status": 10},
        dlq={"BAD_MAGIC": 1},
        marks={"BTC": {"mark": 1.0, "stale": True, "as_of": 5.0}},
    )
    b = _snapshot(
        "http://b",
        partitions=[1, 3],
        event_time=120.0,
        states={"HEALTHY": 4, "MARGIN_CALL": 2},
        closest=[_row("b1", 1.1), _row("b2", None)],
        deficits=[_row("b9", None, 80.0)],
        fund={"balance": 7.0},
        outputs={"margin-status": 5},
        marks={"BTC": {"mark": 2.0, "stale": False, "as_of": 6.0}, "ETH": {"as_of": 1.0}},
    )
    merged = merge([a, b], ["http://c"], closest_n=3, deficits_n=5)
    assert merged["states"] == {"BANKRUPT": 1, "HEALTHY": 7, "MARGIN_CALL": 2}
    assert [r["account"] for r in merged["closest"]] == ["b1", "a1", "a2"]
    assert [r["account"] for r in merged["deficits"]] == ["b9", "a9"]
    assert merged["fund"] == {"balance": 7.0}
    assert merged["outputs"] == {"adl": 2, "margin-status": 15}
    assert merged["dlq"] == {"BAD_MAGIC": 1}
    assert merged["marks"]["BTC"]["mark"] == 2.0 and not merged["marks"]["BTC"]["stale"]
    assert set(merged["marks"]) == {"BTC", "ETH"}
    assert merged["event_time"] == 120.0
    assert merged["unreachable"] == ["http://c"]
    assert [w["url"] for w in merged["workers"]] == ["http://a", "http://b"]


def test_histories_add_up_instant_by_instant_carrying_a_worker_forward() -> None:
    a = [[10.0, {"HEALTHY": 5}], [12.0, {"HEALTHY": 4, "LIQUIDATION": 1}], [14.0, {"HEALTHY": 5}]]
    b = [[12.0, {"HEALTHY": 7}]]  # b started later and missed 14
    assert add_histories([a, b]) == [
        [10.0, {"HEALTHY": 5}],
        [12.0, {"HEALTHY": 11, "LIQUIDATION": 1}],
        [14.0, {"HEALTHY": 12}],
    ]


def test_state_history_keeps_one_point_an_interval_and_a_bounded_number() -> None:
    now = [100.5]
    history = StateHistory(every_s=2.0, kept=3, clock=lambda: now[0])
    history.sample({"HEALTHY": 1})
    now[0] = 101.9  # same interval: replaces
    history.sample({"HEALTHY": 2})
    for t in (102.0, 104.0, 106.1):
        now[0] = t
        history.sample({"HEALTHY": int(t)})
    assert history.points() == [
        [102.0, {"HEALTHY": 102}],
        [104.0, {"HEALTHY": 104}],
        [106.0, {"HEALTHY": 106}],
    ]


def test_the_fund_journal_keeps_events_and_adl_orders_only_the_newest() -> None:
    journal = FundJournal(kept=2)
    events = [
        InsuranceFundEvent(
            event_id=f"e{n}",
            currency="USD",
            kind=FundEventKind.FEE,
            amount=float(n),
            balance_after=float(10 * n),
            account=f"acc-{n}",
            ts=TS,
        )
        for n in range(1, 4)
    ]
    adl = SAMPLES["adl"]
    payout = CollateralTransfer(
        transfer_id="p1", account="gap-000", asset="USD", amount=1.0, kind="INSURANCE_PAYOUT", ts=TS
    )
    journal.note([Output("insurance-fund", "USD", e) for e in events])
    journal.note([Output("adl", "acct-2", adl), Output("collateral", "gap-000", payout)])
    assert [e["account"] for e in journal.events] == ["acc-2", "acc-3"]
    assert journal.events[-1] == {
        "kind": "FEE",
        "amount": 3.0,
        "balance_after": 30.0,
        "account": "acc-3",
        "ts": TS.isoformat(),
    }
    assert [(a["account"], a["counterparty"], a["side"]) for a in journal.adl] == [
        ("acct-2", "acct-1", "SELL")
    ]
