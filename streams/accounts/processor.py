"""One account partition's processing, free of Kafka: portfolio records, the book, outputs.

A fill or transfer updates one record and the book incrementally and yields that account's
status; a market update revalues the partition's accounts in one vectorised pass and yields the
statuses that matter (a state change or a ratio move beyond the parameter). Margin calls go out
on entering MARGIN_CALL and again every repeat interval while it lasts (``on_timer``). The Faust
agents and the offline demo both drive this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from engine.book import MarginBook
from engine.instruments import InstrumentError, InstrumentKind
from engine.insurance import deficit_cents
from engine.liquidation import LiquidationPlanner
from engine.margin import MarginReport
from engine.risk_arrays import MissingMarketData
from engine.states import STATES, AccountState
from streams.accounts.adl import rank_candidates, trade_price
from streams.accounts.dynamic import apply_dynamic_psr, effective_psr
from streams.accounts.portfolio import PortfolioRecord, apply_fill
from streams.accounts.proofs import ProofPublisher
from streams.accounts.status import call_record, output_id, status_record
from streams.accounts.subaccounts import (
    Route,
    Row,
    SubAccountError,
    all_records,
    decorate,
    every_row,
    margined,
    master_of,
    route,
    rows_of,
    standalone_requirements,
)
from streams.market.state import MarketState
from streams.records import (
    AdlCandidate,
    ClaimPosition,
    CollateralTransfer,
    DlqReason,
    Fill,
    InsuranceClaim,
    LiquidationFee,
    LiquidationOrder,
    Liquidity,
    MarketUpdate,
    Record,
    Side,
    TransferKind,
)

ONE_PASS_FROM = 16
"""Accounts from which a wave's margin takes one vectorised pass: below, the one-account path
each is faster (a pass costs ~400 us whatever its size, then ~15 us an account; the one-account
path ~47 us; 2,000 accounts x 3 positions, bench/bench_engine.py's book)."""

# States whose work (liquidation orders, a claim) repeats on market moves without a new status.
_WORKED = frozenset({AccountState.LIQUIDATION, AccountState.BANKRUPT})


class InputRejected(Exception):
    """A decoded input that cannot be applied; goes to the dlq with the reason."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Output:
    """A record to send: logical topic, key and value; ``owner`` the master whose record changed
    when it is not the key (an isolated sub-account's status is keyed ``master/sub``)."""

    topic: str
    key: str
    record: Record
    owner: str = ""


@dataclass(frozen=True)
class InputRef:
    """Where an input came from (for idempotence and deterministic output ids)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Applied:
    """A fill or transfer applied to its account, its status not yet computed: a batch settles
    many accounts' statuses in one margin pass (``AccountProcessor.settle``)."""

    record: PortfolioRecord
    reason: str
    ref: InputRef
    ts: datetime
    outputs: list[Output] = field(default_factory=list)  # what comes before the status


class AccountProcessor:
    """The accounts of one partition and their margin."""

    def __init__(self, partition: int, market: MarketState) -> None:
        self.partition = partition
        self.market = market
        self.records: dict[str, PortfolioRecord] = {}
        self.unpriced: set[str] = set()
        self.candidates_ts: float | None = None
        self.prover: ProofPublisher | None = None
        self.book = MarginBook(
            market.params, market.snapshot(), market.instruments, market.psr.current()
        )

    # ----- state ------------------------------------------------------------------------

    def load(self, records: dict[str, PortfolioRecord]) -> None:
        """Rebuild the book from table records (on partition assignment)."""
        self.records = dict(records)
        self.rebuild()

    def rebuild(self) -> None:
        """A fresh book from every record (new underlyings or parameters)."""
        self.book = MarginBook(
            self.market.params,
            self.market.snapshot(),
            self.market.instruments,
            self.market.psr.current(),
        )
        self.unpriced.clear()
        for master in self.records.values():
            for record in every_row(master):
                self._sync(record, full=True)

    def _priceable(self, record: PortfolioRecord) -> bool:
        """True when the market can value every position and asset of the record."""
        snap = self.book.market
        for name in record.positions:
            try:
                inst = self.market.instruments.get(name)
            except InstrumentError:
                return False
            und = snap.underlyings.get(inst.underlying)
            if und is None or (inst.kind is InstrumentKind.OPTION and und.vol_surface is None):
                return False
        settlement = self.market.params.settlement_currency
        return all(
            a == settlement or a in snap.assets or a in snap.underlyings for a in record.collateral
        )

    def _sync(
        self,
        record: PortfolioRecord,
        full: bool = False,
        names: set[str] | None = None,
        assets: set[str] | None = None,
    ) -> bool:
        """Push a record's positions and collateral into the book; False if not priceable.

        An account the market cannot value yet (an input raced ahead of its market data) is
        kept out of the book, with no status, until a market update makes it priceable.
        """
        if not self._priceable(record):
            if record.account in self.book:
                self.book.load_portfolio(record.account, [], {})
            self.unpriced.add(record.account)
            return True
        if record.account in self.unpriced:
            self.unpriced.discard(record.account)
            full = True
        try:
            if full:
                positions = [(n, p.qty, p.entry) for n, p in record.positions.items()]
                self.book.load_portfolio(record.account, positions, record.collateral)
                return True
            for name in names or ():
                pos = record.positions.get(name)
                qty, entry = (pos.qty, pos.entry) if pos else (0.0, 1.0)
                self.book.set_position(record.account, name, qty, entry)
            for asset in assets or ():
                self.book.set_collateral(record.account, asset, record.collateral.get(asset, 0.0))
            return True
        except (MissingMarketData, InstrumentError):
            return False

    # ----- inputs -----------------------------------------------------------------------

    def _record(self, account: str) -> PortfolioRecord:
        """The record of an account, new when unknown."""
        record = self.records.get(account)
        if record is None:
            record = PortfolioRecord(account, partition=self.partition)
            self.records[account] = record
        return record

    def on_fill(self, fill: Fill, ref: InputRef) -> list[Output]:
        """Apply a fill once; the account's status (and a call on entering MARGIN_CALL)."""
        return self.settle_one(self.apply_fill(fill, ref))

    def apply_fill(self, fill: Fill, ref: InputRef) -> Applied | None:
        """Apply a fill once, its status left to ``settle`` (None: a replay, skipped)."""
        record = self._record(fill.account)
        if record.already_applied(ref.topic, ref.offset, fill.fill_id):
            return self._duplicate(record, fill.fill_id, ref)
        try:
            inst = self.market.instruments.get(fill.instrument)
        except InstrumentError as exc:
            raise InputRejected(DlqReason.UNKNOWN_INSTRUMENT, str(exc)) from None
        target = self._route(record, fill.sub_account, fill.isolated, fill.ts)
        settlement = self.market.params.settlement_currency
        effect = apply_fill(
            target.margined, inst, fill.signed_qty, fill.price, fill.fee, settlement
        )
        if target.shadow is not None:
            apply_fill(target.shadow, inst, fill.signed_qty, fill.price, fill.fee, settlement)
        record.mark_applied(ref.topic, ref.offset, fill.fill_id)
        names = set() if inst.kind is InstrumentKind.SPOT else {inst.name}
        synced = [
            self._sync(r, names=names, assets=set(effect.cash))
            for r in (target.margined, target.shadow)
            if r is not None
        ]
        if target.detached or not all(synced):
            self.rebuild()
        return Applied(record, "FILL", ref, fill.ts, self._fee(fill))

    def _fee(self, fill: Fill) -> list[Output]:
        """A LIQUIDATION fill's fee is owed to the insurance fund (its single owner)."""
        if fill.liquidity is not Liquidity.LIQUIDATION or fill.fee <= 0.0:
            return []
        fee = LiquidationFee(
            fee_id=f"fee-{fill.fill_id}",
            account=fill.account,
            amount=fill.fee,
            fill_id=fill.fill_id,
            ts=fill.ts,
        )
        return [Output("insurance-claims", fill.account, fee)]

    def _route(
        self, record: PortfolioRecord, sub: str | None, isolated: bool, ts: datetime
    ) -> Route:
        """The family records an input of a sub-account applies to (or a dlq rejection)."""
        settlement = self.market.params.settlement_currency
        try:
            return route(
                record, sub, isolated, ts.timestamp(), self.market.instruments.get, settlement
            )
        except SubAccountError as exc:
            raise InputRejected(DlqReason.INVALID_VALUE, str(exc)) from None

    def on_transfer(self, transfer: CollateralTransfer, ref: InputRef) -> list[Output]:
        """Apply a collateral transfer once; the account's status."""
        return self.settle_one(self.apply_transfer(transfer, ref))

    def apply_transfer(self, transfer: CollateralTransfer, ref: InputRef) -> Applied | None:
        """Apply a collateral transfer once, its status left to ``settle`` (None: a replay)."""
        record = self._record(transfer.account)
        if record.already_applied(ref.topic, ref.offset, transfer.transfer_id):
            return self._duplicate(record, transfer.transfer_id, ref)
        asset = transfer.asset
        target = self._route(record, transfer.sub_account, transfer.isolated, transfer.ts)
        for r in (target.margined, target.shadow):
            if r is not None:
                r.add_collateral(asset, transfer.amount)
        if transfer.kind is TransferKind.INSURANCE_PAYOUT:
            target.margined.payouts_received += transfer.amount
        record.mark_applied(ref.topic, ref.offset, transfer.transfer_id)
        synced = [
            self._sync(r, assets={asset}) for r in (target.margined, target.shadow) if r is not None
        ]
        if target.detached or not all(synced):
            self.rebuild()
        return Applied(record, "TRANSFER", ref, transfer.ts)

    def _duplicate(self, record: PortfolioRecord, input_id: str, ref: InputRef) -> None:
        """A replayed offset is skipped silently; a known id at a new offset is a duplicate."""
        if ref.offset <= record.offsets.get(ref.topic, -1):
            return None
        raise InputRejected(DlqReason.DUPLICATE, f"id {input_id} was already applied")

    def on_market(self, update: MarketUpdate, ref: InputRef) -> list[Output]:
        """Apply a market update and revalue the accounts exposed to it in one pass."""
        proofs = self.prover.on_market(self, update) if self.prover else []
        known = set(self.book.underlyings)
        self.market.apply(update)
        snapshot = self.market.snapshot()
        grew = not known >= set(snapshot.underlyings)
        if self.market.params is not self.book.params or grew:
            self.rebuild()
        else:
            und = update.underlying
            self.book.update_market(snapshot, [und] if und in snapshot.underlyings else [])
            apply_dynamic_psr(self.book, self.market, und)
            rows = all_records(self.records.values())
            for account in [a for a in self.unpriced if a in rows and self._priceable(rows[a])]:
                self._sync(rows[account], full=True)
        if not self.records:
            return proofs
        return proofs + self._candidates(update.ts) + self._market_outputs(ref, update.ts)

    def _candidates(self, ts: datetime) -> list[Output]:
        """This partition's ADL candidates for the fund's owner, once per interval of event
        time (a new batch replaces the last one)."""
        adl = self.market.params.adl
        now = ts.timestamp()
        if self.candidates_ts is not None and now - self.candidates_ts < adl.candidate_interval_s:
            return []
        self.candidates_ts = now
        rows = all_records(self.records.values())
        priced = [a for a in rows if a in self.book and a not in self.unpriced]
        if not priced:
            return []
        index = np.array([self.book.account_index[a] for a in priced], dtype=np.int64)
        equity = self.book.margin(priced).equity
        collateral = self.book.collateral_value(index)
        found = rank_candidates(
            {a: rows[a] for a in priced},
            self.book,
            dict(zip(priced, equity.tolist(), strict=True)),
            dict(zip(priced, collateral.tolist(), strict=True)),
            adl.candidates_per_side,
        )
        return [
            Output(
                "insurance-claims",
                master_of(c.account),
                AdlCandidate(
                    account=c.account,
                    instrument=c.instrument,
                    qty=c.qty,
                    rank_score=c.score,
                    partition=self.partition,
                    ts=ts,
                ),
            )
            for c in found
        ]

    # ----- outputs ----------------------------------------------------------------------

    def _margin(self, accounts: list[str]) -> MarginReport | None:
        """The book's report for some accounts (None when none is in the book)."""
        present = [a for a in accounts if a in self.book and a not in self.unpriced]
        return self.book.margin(present) if present else None

    def settle_one(self, applied: Applied | None) -> list[Output]:
        """The outputs of one applied input (none for a replay)."""
        return self.settle([applied])[0] if applied is not None else []

    def settle(self, applied: Sequence[Applied]) -> list[list[Output]]:
        """The outputs of applied inputs of distinct accounts, in order: each one's own (a
        fee), then its family's status (master, isolated subs). A few accounts take the
        one-account margin path each; more take one vectorised pass (``ONE_PASS_FROM``)."""
        families = [margined(a.record) for a in applied]
        accounts = [r.account for family in families for r in family]
        if len(accounts) < ONE_PASS_FROM:
            return [
                self._settle_alone(a, [r.account for r in f])
                for a, f in zip(applied, families, strict=True)
            ]
        report = self._margin(accounts)
        if report is None:
            return [a.outputs for a in applied]
        where = {account: i for i, account in enumerate(report.accounts)}
        out = []
        for a, family in zip(applied, families, strict=True):
            rows = np.array([where[r.account] for r in family if r.account in where], np.int64)
            out.append(a.outputs + self._status(report, rows, a) if rows.size else a.outputs)
        return out

    def _settle_alone(self, applied: Applied, accounts: list[str]) -> list[Output]:
        """One applied input's outputs from its family's own margin report."""
        report = self._margin(accounts)
        if report is None:
            return applied.outputs
        return applied.outputs + self._status(report, np.arange(len(report.accounts)), applied)

    def _status(self, report: MarginReport, rows: np.ndarray, applied: Applied) -> list[Output]:
        """The status (and transitions) of an applied input's family, rows of a report."""
        family = rows_of([applied.record])
        ref, ts = applied.ref, applied.ts
        return self._emit(report, rows, applied.reason, ref, ts, force=True, family=family)

    def _market_outputs(self, ref: InputRef, ts: datetime) -> list[Output]:
        """Statuses after a market move: state changes and ratio moves beyond the parameter."""
        report = self.book.margin()
        family = rows_of(self.records.values())
        rows = np.array(
            [i for i, a in enumerate(report.accounts) if a in family and a not in self.unpriced],
            dtype=np.int64,
        )
        return self._emit(report, rows, "MARKET", ref, ts, force=False, family=family)

    def _emit(
        self,
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
        stale = sorted(self.market.stale)
        psr = effective_psr(self.book)
        masters = {id(r.master): r.master for r in family.values() if r.sub is None}
        standalone = standalone_requirements(
            self.book, [m for m in masters.values() if m.subs], report
        )
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
            if quiet:  # no status, but the orders or the claim repeat when due
                outputs += self._transition(record, state, status, ts, key)
                continue
            outputs.append(
                Output(
                    "margin-status",
                    record.account,
                    decorate(status, key, row.sub, standalone.get(key), psr),
                    key,
                )
            )
            outputs += self._transition(record, state, status, ts, key)
            record.last_ratio = ratio if np.isfinite(ratio) else None
            record.status_sequence += 1
        return outputs

    def _transition(
        self, record: PortfolioRecord, state: AccountState, status: Record, ts: datetime, key: str
    ) -> list[Output]:
        """Record the new state; a margin call on entering MARGIN_CALL."""
        entering = state is AccountState.MARGIN_CALL and record.state != state.value
        record.state = state.value
        if state is AccountState.LIQUIDATION:
            return self._liquidate(record, status, ts, key)
        if state is AccountState.BANKRUPT:
            return self._claim(record, status, ts, key)
        record.claim_ts = None
        record.liquidation_ts = None
        if not entering:
            if state is not AccountState.MARGIN_CALL:
                record.last_call_ts = None
            return []
        record.call_sequence = 1
        record.last_call_ts = ts.timestamp()
        repeat = self.market.params.status.margin_call_repeat_s
        return [Output("margin-calls", key, call_record(status, 1, ts, repeat))]  # type: ignore[arg-type]

    def _liquidate(
        self, record: PortfolioRecord, status: Record, ts: datetime, key: str
    ) -> list[Output]:
        """Partial-liquidation orders for an account below MM, unless a mark it depends on is
        STALE, or orders went out less than the repeat interval ago (they are being worked)."""
        now = ts.timestamp()
        repeat = self.market.params.status.margin_call_repeat_s
        if record.liquidation_ts is not None and now - record.liquidation_ts < repeat:
            return []
        if self._claim_outstanding(record) or self._depends_on_stale(record):
            return []
        plan = LiquidationPlanner(self.book).plan(record.account)
        if not plan.orders:
            return []
        record.liquidation_ts = now
        record.liquidation_sequence += 1
        return [
            Output(
                "liquidations",
                key,
                LiquidationOrder(
                    order_id=output_id(
                        "liq",
                        status.input_topic,  # type: ignore[attr-defined]
                        status.input_partition,  # type: ignore[attr-defined]
                        status.input_offset,  # type: ignore[attr-defined]
                        record.account,
                        o.sequence,
                    ),
                    account=record.account,
                    instrument=o.instrument,
                    side=Side.BUY if o.qty > 0 else Side.SELL,
                    qty=abs(o.qty),
                    limit_price=max(o.limit_price, 1e-12),
                    reason="MM_BREACH",
                    sequence=o.sequence,
                    ts=ts,
                ),
            )
            for o in plan.orders
        ]

    def _claim(
        self, record: PortfolioRecord, status: Record, ts: datetime, key: str
    ) -> list[Output]:
        """A bankrupt account's claim for its deficit -E with its open positions, once per
        claim interval of event time (what the last claim did not settle is claimed again)."""
        now = ts.timestamp()
        repeat = self.market.params.adl.claim_repeat_s
        if record.claim_ts is not None and now - record.claim_ts < repeat:
            return []
        if self._claim_outstanding(record) or self._depends_on_stale(record):
            return []
        deficit = -float(status.equity)  # type: ignore[attr-defined]
        if deficit_cents(deficit) <= 0:  # float residue below a cent: nothing to pay
            return []
        record.claim_ts = now
        record.claim_sequence += 1
        record.claimed = sorted(record.positions)
        positions = []
        for name, pos in sorted(record.positions.items()):
            price = trade_price(self.book, self.book.instrument(name))
            positions.append(
                ClaimPosition(
                    instrument=name, qty=pos.qty, mark=price.price, unit_value=price.unit_value
                )
            )
        claim = InsuranceClaim(
            claim_id=output_id(
                "claim",
                status.input_topic,  # type: ignore[attr-defined]
                status.input_partition,  # type: ignore[attr-defined]
                status.input_offset,  # type: ignore[attr-defined]
                record.account,
                record.claim_sequence,
            ),
            account=record.account,
            deficit=deficit,
            payouts_received=record.payouts_received,
            positions=positions,
            ts=ts,
        )
        return [Output("insurance-claims", key, claim)]

    @staticmethod
    def _claim_outstanding(record: PortfolioRecord) -> bool:
        """True while a position the last claim handed to ADL is still open: its ADL fills are
        on their way, so neither a new claim nor a liquidation may close it a second time."""
        return any(name in record.positions for name in record.claimed)

    def _depends_on_stale(self, record: PortfolioRecord) -> bool:
        """True when a position's underlying or a coin held is STALE."""
        stale = self.market.stale
        if not stale:
            return False
        names = {self.market.instruments.get(n).underlying for n in record.positions}
        return bool((names | set(record.collateral)) & stale)

    def on_timer(self, now: float) -> list[Output]:
        """Repeat the margin call of every account still in MARGIN_CALL after the interval."""
        repeat = self.market.params.status.margin_call_repeat_s
        # Every second on every partition: look only at families with a call outstanding (a
        # scan of plain attributes), not a row per account (1.2 s a tick at 100,000 accounts).
        family = rows_of(m for m in self.records.values() if _calling(m))
        due = [
            r.record
            for r in family.values()
            if r.record.state == AccountState.MARGIN_CALL.value
            and r.record.last_call_ts is not None
            and now - r.record.last_call_ts >= repeat
        ]
        report = self._margin([r.account for r in due])
        if report is None:
            return []
        outputs: list[Output] = []
        ts = datetime.fromtimestamp(now, tz=UTC)
        for i, account in enumerate(report.accounts):
            record = family[account].record
            if STATES[int(report.state[i])] is not AccountState.MARGIN_CALL:
                continue
            record.call_sequence += 1
            record.last_call_ts = now
            ref = InputRef("timer", self.partition, int(now * 1000))
            status = status_record(
                report,
                i,
                reason="TIMER",
                topic=ref.topic,
                partition=ref.partition,
                offset=ref.offset,
                ts=ts,
            )
            outputs.append(
                Output(
                    "margin-calls",
                    family[account].master.account,
                    call_record(status, record.call_sequence, ts, repeat),
                )
            )
        return outputs


def _calling(master: PortfolioRecord) -> bool:
    """True when the master or one of its sub-accounts has a margin call outstanding."""
    return master.last_call_ts is not None or any(
        s.last_call_ts is not None for s in master.subs.values()
    )


def _ratio_moved(last: float | None, ratio: float, threshold: float) -> bool:
    """True when the MM ratio moved by more than the threshold (relative) since last status."""
    if last is None:
        return np.isfinite(ratio)
    if not np.isfinite(ratio):
        return True
    return bool(abs(ratio - last) > threshold * abs(last))
