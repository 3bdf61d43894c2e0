"""The closed loop on the embedded broker: a BTC crash, liquidations, the fund and ADL.

A real worker process runs the account, market and fund agents; the simulator plays the market
(BTC -35% over a simulated hour, ETH and SOL following, books thinning to a tenth) and the
matching engine for the orders that come back. After the loop settles: every account that
breached MM got orders, none is left below MM with positions, the fund's events reconcile to the
cent, and no fill was applied twice.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.insurance import deficit_cents, to_cents
from streams import records as r
from streams.fund.owner import fund_event_id
from streams.tools.simulator.runner import SimulatorLoop
from streams.tools.simulator.scenario import CrashScenario
from tests.streams.worker_harness import Collector, running

ACCOUNTS = int(os.environ.get("SPMA_LOOP_ACCOUNTS", "2000"))
SCENARIO = CrashScenario(accounts=ACCOUNTS, crash=0.35, steps=12, step_s=300.0, depth_floor=0.1)
OUTPUTS = (
    "margin-status",
    "liquidations",
    "insurance-fund",
    "insurance-claims",
    "adl",
    "fills",
    "collateral",
    "dlq",
)


def _last_status(out: Collector) -> dict[str, Any]:
    """The last status of each account."""
    last: dict[str, Any] = {}
    for s in out.decoded("margin-status"):
        last[s.account] = s  # type: ignore[attr-defined]
    return last


def _history(statuses: list[Any], accounts: list[str]) -> list[tuple[Any, ...]]:
    """What the statuses of some accounts said, in order (for a failure's message)."""
    return [
        (
            s.account,
            s.state.value,
            s.reason,
            s.stale_underlyings,
            round(s.equity_mm, 2),
            round(s.mm, 2),
        )
        for s in statuses
        if s.account in accounts
    ]


def _recognised(claims: list[Any], events: list[Any]) -> dict[str, int]:
    """Cents of deficit the fund recognised per account: each claim's deficit net of what the
    fund had paid the account beyond what the claim says it received (payouts in flight)."""
    payout = {e.event_id: to_cents(e.amount) for e in events if e.kind.value == "PAYOUT"}
    paid: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for c in claims:
        in_flight = max(paid[c.account] - to_cents(c.payouts_received), 0)
        total[c.account] += deficit_cents(c.deficit - in_flight / 100.0)
        paid[c.account] += payout.get(fund_event_id("PAYOUT", c.claim_id), 0)
    return dict(total)


def _positionless(claims: list[Any], events: list[Any]) -> int:
    """Cents of shortfall of the claims that came with no position: ADL has nothing to close."""
    shortfall = {e.event_id: to_cents(e.amount) for e in events if e.kind.value == "SHORTFALL"}
    return sum(
        shortfall.get(fund_event_id("SHORTFALL", c.claim_id), 0) for c in claims if not c.positions
    )


def _unabsorbed(claims: list[Any], events: list[Any], adl: list[Any]) -> list[tuple[Any, ...]]:
    """The claims whose shortfall ADL did not absorb to the cent (for a failure's message):
    the claim, its shortfall, what ADL absorbed of it, and its positions."""
    shortfall = {e.event_id: to_cents(e.amount) for e in events if e.kind.value == "SHORTFALL"}
    absorbed: Counter[str] = Counter()
    for o in adl:
        absorbed[o.claim_id] += to_cents(o.amount)
    return [
        (c.claim_id, c.account, owed, absorbed[c.claim_id], [p.model_dump() for p in c.positions])
        for c in claims
        if c.positions
        and (owed := shortfall.get(fund_event_id("SHORTFALL", c.claim_id), 0))
        != absorbed[c.claim_id]
    ]


def _fills(fills: list[Any], accounts: list[str]) -> list[tuple[Any, ...]]:
    """The fills of some accounts, in order (for a failure's message)."""
    return [
        (f.account, f.instrument, f.side.value, f.qty, f.price, f.liquidity.value)
        for f in fills
        if f.account in accounts
    ]


def test_crash_closes_the_loop(kafka_bootstrap: str, tmp_path: Path) -> None:
    start = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(hours=2)
    ex = SCENARIO.seed(start)
    with running(kafka_bootstrap, tmp_path) as h:
        out = h.collect(OUTPUTS)
        sim = SimulatorLoop(h.settings, h.codec, group=h.app_id)
        try:
            sim.seed(ex.inputs)
            out.wait(
                lambda c: len({s.account for s in c.decoded("margin-status")}) >= ACCOUNTS,  # type: ignore[attr-defined]
                timeout_s=240,
                what="every account's first status",
            )
            for k in range(SCENARIO.steps):
                sim.publish(SCENARIO.step(ex, k))
                sim.pump(quiet_s=4.0, timeout_s=240)
            for _ in range(8):
                sim.publish(SCENARIO.hold(ex))
                if sim.pump(quiet_s=5.0, timeout_s=240) == 0:
                    break
            out.settle(quiet_s=6.0, timeout_s=240)
        finally:
            sim.close()
        _check(out, sim)
        out.close()


def _check(out: Collector, sim: SimulatorLoop) -> None:
    statuses = out.decoded("margin-status")
    orders = out.decoded("liquidations")
    events = out.decoded("insurance-fund")
    claims = [c for c in out.decoded("insurance-claims") if isinstance(c, r.InsuranceClaim)]
    adl = out.decoded("adl")
    fills = out.decoded("fills")
    assert not out.records["dlq"], [d.detail for d in out.decoded("dlq")]  # type: ignore[attr-defined]

    # A breach seen while a mark is STALE never triggers a liquidation (margin-model.md section
    # 7): a step's first quote finds its peers a step old, so the mark is briefly stale.
    breached = {
        s.account  # type: ignore[attr-defined]
        for s in statuses
        if s.state.value in ("LIQUIDATION", "BANKRUPT") and not s.stale_underlyings  # type: ignore[attr-defined]
    }
    assert len(breached) >= ACCOUNTS // 20, "the crash should push many accounts below MM"
    ordered = {o.account for o in orders} | {c.account for c in claims}  # type: ignore[attr-defined]
    assert breached <= ordered, _history(statuses, sorted(breached - ordered)[:3])

    last = _last_status(out)
    below = [
        (a, s.state.value, s.equity_mm, s.mm)
        for a, s in last.items()
        if s.mm > 0 and s.equity_mm < s.mm
    ]
    assert not below, (
        below[:3],
        [last[a].model_dump() for a, *_ in below[:2]],
        _fills(fills, [a for a, *_ in below[:2]]),
    )

    # the fund reconciles to the cent
    by_kind: Counter[str] = Counter()
    for e in events:
        by_kind[e.kind.value] += to_cents(e.amount)  # type: ignore[attr-defined]
    balance = to_cents(events[-1].balance_after) if events else 0  # type: ignore[attr-defined]
    assert balance == by_kind["FEE"] - by_kind["PAYOUT"]
    deficits = sum(_recognised(claims, events).values())
    adl_cents = sum(to_cents(o.amount) for o in adl)  # type: ignore[attr-defined]
    assert deficits == by_kind["PAYOUT"] + by_kind["SHORTFALL"]
    # A shortfall is absorbed by ADL, or, for a position no candidate covered within the
    # timeout, handed to the book (a BANKRUPTCY takeover; its share is counted uncovered by the
    # fund, not emitted). Whether a bankrupt account's instrument had a counterparty among the
    # candidates at that moment depends on the race of liquidations and candidate batches, so
    # takeovers may happen; without one, ADL must absorb the shortfall to the cent.
    # A claim with no position left (its positions all closed by the liquidations, a deficit
    # remaining) has nothing ADL can close: its shortfall is uncovered, counted by the fund.
    takeovers = [o for o in orders if o.reason == "BANKRUPTCY"]  # type: ignore[attr-defined]
    absorbable = by_kind["SHORTFALL"] - _positionless(claims, events)
    assert adl_cents <= absorbable, (adl_cents, absorbable)
    if not takeovers:
        assert absorbable == adl_cents, _unabsorbed(claims, events, adl)
    assert by_kind["FEE"] > 0
    assert claims and (adl or takeovers), "the reckless longs go bankrupt; ADL or the book closes"
    claimed = {c.account for c in claims}  # type: ignore[attr-defined]
    assert all(o.account in claimed for o in takeovers), "a takeover is of a claim's position"  # type: ignore[attr-defined]

    # no fill applied twice: every fill id once on the topic, none refused as a duplicate
    ids = Counter(f.fill_id for f in fills)  # type: ignore[attr-defined]
    assert max(ids.values()) == 1
    liquidation_fills = [f for f in fills if f.liquidity.value == "LIQUIDATION"]  # type: ignore[attr-defined]
    assert liquidation_fills and sim.stats["liquidation_orders"] == len(orders)
    stale_statuses = sum(1 for s in statuses if s.stale_underlyings)  # type: ignore[attr-defined]
    print(
        f"\nloop: {len(breached)} breached, {len(orders)} orders, {len(liquidation_fills)} "
        f"liquidation fills, {len(claims)} claims, {len(adl)} ADL orders, "
        f"fund {balance / 100:.2f}, {stale_statuses} statuses on a stale mark"
    )
