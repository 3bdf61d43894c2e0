"""What a partition says after a margin pass: the statuses worth sending and the work each state
calls for (a margin call on entering MARGIN_CALL, partial-liquidation orders below MM, an
insurance claim when bankrupt), each repeated no more often than its interval of event time.

The processor decides which accounts a pass covers; this module turns the pass's report into
records and keeps each account's record of what it last said (state, ratio, sequences, times).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from engine.book import MarginBook
from engine.insurance import deficit_cents
from engine.liquidation import LiquidationPlanner
from engine.margin import MarginReport
from engine.states import STATES, AccountState
from streams.accounts.adl import trade_price
from streams.accounts.dynamic import effective_psr
from streams.accounts.outputs import InputRef, Output
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.status import call_record, output_id, status_record
from streams.accounts.subaccounts import Row, decorate, standalone_requirements
from streams.market.state import MarketState
from streams.records import (
    ClaimPosition,
    InsuranceClaim,
    LiquidationOrder,
    MarginStatus,
    Side,
)
from streams.topics.catalog import Topic

# States whose work (liquidation orders, a claim) repeats on market moves without a new status.
_WORKED = frozenset({AccountState.LIQUIDATION, AccountState.BANKRUPT})


@dataclass(slots=True)  # made for every status sent: not frozen, which costs twice as much
class Said:
    """What a pass said of one account, that its work follows from: the book it was margined
    in, its record, its status, the event time and the key its outputs go under."""

    book: MarginBook
    record: PortfolioRecord
    status: MarginStatus
    ts: datetime
    key: str


class StatusEmitter:
    """Turns a partition's margin reports into statuses, calls, orders and claims."""

    def __init__(self, market: MarketState) -> None:
        self.market = market

    def emit(
        self,
        book: MarginBook,
        report: MarginReport,
        rows: np.ndarray,
        reason: str,
        ref: InputRef,
        ts: datetime,
        force: bool,
        family: dict[str, Row],
    ) -> list[Output]:
        """Status (and call) records for rows of a report whose change is worth sending."""
        outputs: list[Output] = []
        threshold = self.market.params.status.ratio_change
        stale = sorted(self.market.stale_at(ts.timestamp()))
        psr = effective_psr(book)
        masters = {id(r.master): r.master for r in family.values() if r.sub is None}
        standalone = standalone_requirements(book, [m for m in masters.values() if m.subs], report)
        for i in rows.tolist():
            row = family[report.accounts[i]]
            record = row.record
            state = STATES[int(report.state[i])]
            ratio = float(report.ratio_mm[i])
            moved = _ratio_moved(record.last_ratio, ratio, threshold)
            first = record.status_sequence == 0  # e.g. it waited for its market: say it
            quiet = not (force or first or state.value != record.state or moved)
            if quiet and state not in _WORKED:
                continue
            status = status_record(
                report,
                i,
                reason=reason,
                topic=ref.topic,
                partition=ref.partition,
                offset=ref.offset,
                ts=ts,
                stale=stale,
            )
            key = row.master.account
            said = Said(book, record, status, ts, key)
            if quiet:  # no status, but the orders or the claim repeat when due
                outputs += self._transition(said, state)
                continue
            decorated = decorate(status, key, row.sub, standalone.get(key), psr)
            outputs.append(Output(Topic.MARGIN_STATUS, record.account, decorated, key))
            outputs += self._transition(said, state)
            record.last_ratio = ratio if np.isfinite(ratio) else None
            record.status_sequence += 1
        return outputs

    def _transition(self, said: Said, state: AccountState) -> list[Output]:
        """Record the new state; a margin call on entering MARGIN_CALL."""
        record, ts = said.record, said.ts
        entering = state is AccountState.MARGIN_CALL and record.state != state.value
        record.state = state.value
        if state is AccountState.LIQUIDATION:
            return self._liquidate(said)
        if state is AccountState.BANKRUPT:
            return self._claim(said)
        record.claim_ts = None
        record.liquidation_ts = None
        if not entering:
            if state is not AccountState.MARGIN_CALL:
                record.last_call_ts = None
            return []
        record.call_sequence = 1
        record.last_call_ts = ts.timestamp()
        repeat = self.market.params.status.margin_call_repeat_s
        return [Output(Topic.MARGIN_CALLS, said.key, call_record(said.status, 1, ts, repeat))]

    def _may_act(self, said: Said, last_ts: float | None, repeat_s: float) -> bool:
        """True when orders or a claim may go out now: the last went out at least the repeat
        interval ago, no claimed position is still open, and no mark it depends on is STALE."""
        now = said.ts.timestamp()
        if last_ts is not None and now - last_ts < repeat_s:
            return False
        return not (_claim_outstanding(said.record) or self._depends_on_stale(said.record, said.ts))

    def _liquidate(self, said: Said) -> list[Output]:
        """Partial-liquidation orders for an account below MM, unless a mark it depends on is
        STALE, or orders went out less than the repeat interval ago (they are being worked)."""
        record = said.record
        repeat = self.market.params.status.margin_call_repeat_s
        if not self._may_act(said, record.liquidation_ts, repeat):
            return []
        plan = LiquidationPlanner(said.book).plan(record.account)
        if not plan.orders:
            return []
        record.liquidation_ts = said.ts.timestamp()
        record.liquidation_sequence += 1
        return [
            Output(
                Topic.LIQUIDATIONS,
                said.key,
                LiquidationOrder(
                    order_id=_caused_id("liq", said.status, record.account, o.sequence),
                    account=record.account,
                    instrument=o.instrument,
                    side=Side.BUY if o.qty > 0 else Side.SELL,
                    qty=abs(o.qty),
                    limit_price=max(o.limit_price, 1e-12),
                    reason="MM_BREACH",
                    sequence=o.sequence,
                    ts=said.ts,
                ),
            )
            for o in plan.orders
        ]

    def _claim(self, said: Said) -> list[Output]:
        """A bankrupt account's claim for its deficit -E with its open positions, once per
        claim interval of event time (what the last claim did not settle is claimed again)."""
        record, book = said.record, said.book
        if not self._may_act(said, record.claim_ts, self.market.params.adl.claim_repeat_s):
            return []
        deficit = -float(said.status.equity)
        if deficit_cents(deficit) <= 0:  # float residue below a cent: nothing to pay
            return []
        record.claim_ts = said.ts.timestamp()
        record.claim_sequence += 1
        record.claimed = sorted(record.positions)
        positions = []
        for name, pos in sorted(record.positions.items()):
            price = trade_price(book, book.instrument(name))
            positions.append(
                ClaimPosition(
                    instrument=name, qty=pos.qty, mark=price.price, unit_value=price.unit_value
                )
            )
        claim = InsuranceClaim(
            claim_id=_caused_id("claim", said.status, record.account, record.claim_sequence),
            account=record.account,
            deficit=deficit,
            payouts_received=record.payouts_received,
            positions=positions,
            ts=said.ts,
        )
        return [Output(Topic.INSURANCE_CLAIMS, said.key, claim)]

    def _depends_on_stale(self, record: PortfolioRecord, ts: datetime) -> bool:
        """True when a position's underlying or a coin held is STALE at the input's time."""
        stale = self.market.stale_at(ts.timestamp())
        if not stale:
            return False
        names = {self.market.instruments.get(n).underlying for n in record.positions}
        return bool((names | set(record.collateral)) & stale)

    def repeat_calls(
        self, report: MarginReport, family: dict[str, Row], partition: int, now: float
    ) -> list[Output]:
        """Margin calls again for the report's accounts still in MARGIN_CALL (the caller chose
        those whose interval has passed), each with its next sequence number."""
        repeat = self.market.params.status.margin_call_repeat_s
        outputs: list[Output] = []
        ts = datetime.fromtimestamp(now, tz=UTC)
        ref = InputRef("timer", partition, int(now * 1000))
        for i, account in enumerate(report.accounts):
            record = family[account].record
            if STATES[int(report.state[i])] is not AccountState.MARGIN_CALL:
                continue
            record.call_sequence += 1
            record.last_call_ts = now
            status = status_record(
                report,
                i,
                reason="TIMER",
                topic=ref.topic,
                partition=ref.partition,
                offset=ref.offset,
                ts=ts,
            )
            call = call_record(status, record.call_sequence, ts, repeat)
            outputs.append(Output(Topic.MARGIN_CALLS, family[account].master.account, call))
        return outputs


def _caused_id(kind: str, status: MarginStatus, account: str, n: int) -> str:
    """The deterministic id of an order or a claim: the input that caused it and a sequence."""
    return output_id(
        kind, status.input_topic, status.input_partition, status.input_offset, account, n
    )


def _claim_outstanding(record: PortfolioRecord) -> bool:
    """True while a position the last claim handed to ADL is still open: its ADL fills are on
    their way, so neither a new claim nor a liquidation may close it a second time."""
    return any(name in record.positions for name in record.claimed)


def calling(master: PortfolioRecord) -> bool:
    """True when the master or one of its sub-accounts has a margin call outstanding."""
    return master.last_call_ts is not None or any(
        s.last_call_ts is not None for s in master.subs.values()
    )


def _ratio_moved(last: float | None, ratio: float, threshold: float) -> bool:
    """True when the MM ratio moved by more than the threshold (relative) since last status."""
    if last is None:
        return bool(np.isfinite(ratio))
    if not np.isfinite(ratio):
        return True
    return bool(abs(ratio - last) > threshold * abs(last))
