"""One account partition's processing, free of Kafka: portfolio records, the book, outputs.

A fill or transfer updates one record and the book incrementally and yields that account's
status; a market update revalues the partition's accounts in one vectorised pass and yields the
statuses that matter (a state change or a ratio move beyond the parameter). Margin calls go out
on entering MARGIN_CALL and again every repeat interval while it lasts (``on_timer``). The Faust
agents and the offline demo both drive this class.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from engine.book import MarginBook
from engine.instruments import InstrumentError, InstrumentKind
from engine.margin import MarginReport
from engine.risk_arrays import MissingMarketData
from engine.states import AccountState
from streams.accounts.adl import candidate_outputs
from streams.accounts.dynamic import apply_dynamic_psr
from streams.accounts.emitter import StatusEmitter, calling
from streams.accounts.holding import (
    AwaitingReference,
    Held,
    held_ids,
    hold,
    refused,
    release,
)
from streams.accounts.outputs import Applied, InputRef, Output
from streams.accounts.portfolio import PortfolioRecord, apply_fill
from streams.accounts.proofs import ProofPublisher
from streams.accounts.settlement import settle_expired, settle_late
from streams.accounts.subaccounts import (
    Route,
    SubAccountError,
    all_records,
    every_row,
    margined,
    route,
    rows_of,
)
from streams.accounts.validation import check_fill, check_transfer
from streams.errors import InputRejected
from streams.market.state import MarketState, update_origin
from streams.records import (
    CollateralTransfer,
    DlqReason,
    Fill,
    LiquidationFee,
    Liquidity,
    MarketUpdate,
    TransferKind,
)
from streams.topics.catalog import Topic

ONE_PASS_FROM = 16
"""Accounts from which a wave's margin takes one vectorised pass: below, the one-account path
each is faster (a pass costs ~400 us whatever its size, then ~15 us an account; the one-account
path ~47 us; 2,000 accounts x 3 positions, bench/bench_engine.py's book)."""


def cause_of(update: MarketUpdate, ref: InputRef) -> InputRef:
    """The market input a broadcast came from (its update id), else the broadcast itself."""
    origin = update_origin(update.update_id)
    if origin is None:
        return ref
    source, offset = origin
    topic, _, partition = source.rpartition(":")
    return InputRef(topic, int(partition), offset) if partition.isdigit() else ref


class AccountProcessor:
    """The accounts of one partition and their margin."""

    def __init__(self, partition: int, market: MarketState) -> None:
        self.partition = partition
        self.market = market
        self.records: dict[str, PortfolioRecord] = {}
        self.unpriced: set[str] = set()
        self.candidates_ts: float | None = None
        self.touched: set[str] = set()  # masters a market update changed (settled, released)
        self.settled: set[str] = set()  # masters the last market update settled positions of
        self.holding: set[str] = set()  # masters with held inputs (streams/accounts/holding.py)
        self.prover: ProofPublisher | None = None
        self.emitter = StatusEmitter(market)
        self.book = MarginBook(
            market.params, market.snapshot(), market.instruments, market.psr.current()
        )

    # ----- state ------------------------------------------------------------------------

    def load(self, records: dict[str, PortfolioRecord]) -> None:
        """Rebuild the book from table records (on partition assignment)."""
        self.records = dict(records)
        self.holding = {a for a, record in self.records.items() if record.held}
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

    def apply_fill(self, fill: Fill, ref: InputRef, raw: bytes | None = None) -> Applied | None:
        """Apply a fill once, its status left to ``settle`` (None: a replay, skipped); an
        invalid fill (streams/accounts/validation.py) raises InputRejected, nothing applied;
        one on an instrument not listed yet is held (streams/accounts/holding.py), with its
        bytes ``raw`` for the dlq."""
        record = self.records.get(fill.account)
        if record is not None and self._seen(record, ref, fill.fill_id):
            return None
        try:
            return self._fill(fill, ref, record)
        except AwaitingReference as waiting:
            return self._hold(fill, ref, record, waiting, raw)

    def _seen(self, record: PortfolioRecord, ref: InputRef, input_id: str) -> bool:
        """True for a replayed offset; DUPLICATE for a known id (applied or held) at a new
        offset."""
        if record.already_applied(ref.topic, ref.offset, input_id) or (
            record.held and input_id in held_ids(record)
        ):
            self._duplicate(record, input_id, ref)
            return True
        return False

    def _fill(self, fill: Fill, ref: InputRef, record: PortfolioRecord | None) -> Applied:
        """Check and apply a fill (a released one too: its offset was counted when held)."""
        inst = check_fill(fill, self.market)
        record = record if record is not None else self._record(fill.account)
        target = self._route(record, fill.sub_account, fill.isolated, fill.ts)
        settlement = self.market.params.settlement_currency
        effect = apply_fill(
            target.margined, inst, fill.signed_qty, fill.price, fill.fee, settlement
        )
        if target.shadow is not None:
            apply_fill(target.shadow, inst, fill.signed_qty, fill.price, fill.fee, settlement)
        record.mark_applied(ref.topic, ref.offset, fill.fill_id)
        late = settle_late(record, inst, self.market)
        names = set() if inst.kind is InstrumentKind.SPOT else {inst.name}
        synced = [
            self._sync(r, full=late, names=names, assets=set(effect.cash))
            for r in (target.margined, target.shadow)
            if r is not None
        ]
        if target.detached or not all(synced):
            self.rebuild()
        return Applied(record, "FILL", ref, fill.ts, self._fee(fill))

    def _hold(
        self,
        value: Fill | CollateralTransfer,
        ref: InputRef,
        record: PortfolioRecord | None,
        waiting: AwaitingReference,
        raw: bytes | None,
    ) -> Applied:
        """Keep an input that waits for its listing or its asset in its record; nothing to say
        until it is released."""
        record = record if record is not None else self._record(value.account)
        hold(record, ref, value, waiting, self.market, raw)
        self.holding.add(record.account)
        return Applied(record, "HELD", ref, value.ts, says_status=False)

    def _apply_held(self, record: PortfolioRecord, held: Held, ts: datetime) -> list[Output]:
        """A released input through the checks and applied: its outputs, or its dlq record."""
        try:
            if isinstance(held.value, Fill):
                applied = self._fill(held.value, held.ref, record)
            else:
                applied = self._transfer(held.value, held.ref, record)
        except (InputRejected, AwaitingReference) as exc:
            reason = exc.reason
            return [Output(Topic.DLQ, record.account, refused(held, reason, exc.detail, ts))]
        return self.settle_one(applied)

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
        return [Output(Topic.INSURANCE_CLAIMS, fill.account, fee)]

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

    def apply_transfer(
        self, transfer: CollateralTransfer, ref: InputRef, raw: bytes | None = None
    ) -> Applied | None:
        """Apply a collateral transfer once, its status left to ``settle`` (None: a replay); an
        invalid one raises InputRejected, nothing applied; one of an asset nobody prices or
        lists yet is held."""
        record = self.records.get(transfer.account)
        if record is not None and self._seen(record, ref, transfer.transfer_id):
            return None
        try:
            return self._transfer(transfer, ref, record)
        except AwaitingReference as waiting:
            return self._hold(transfer, ref, record, waiting, raw)

    def _transfer(
        self, transfer: CollateralTransfer, ref: InputRef, record: PortfolioRecord | None
    ) -> Applied:
        """Check and apply a transfer (a released one too)."""
        check_transfer(transfer, self.market)
        record = record if record is not None else self._record(transfer.account)
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
            return
        raise InputRejected(DlqReason.DUPLICATE, f"id {input_id} was already applied")

    def on_market(self, update: MarketUpdate, ref: InputRef) -> list[Output]:
        """Apply a market update once (a re-broadcast of a market input already applied gives
        nothing) and revalue the accounts exposed to it in one pass. Its outputs name the market
        input as their cause, so their ids do not depend on where a broadcast landed."""
        if not self.market.first_time(update):
            return []
        ref = cause_of(update, ref)
        proofs = self.prover.on_market(self, update) if self.prover else []
        known = set(self.book.underlyings)
        self.market.apply(update)
        self.settled = settle_expired(self.records.values(), self.market, update)
        self.touched = set(self.settled)
        snapshot = self.market.snapshot()
        grew = not known >= set(snapshot.underlyings)
        if self.market.params is not self.book.params or grew or self.settled:
            self.rebuild()  # (a settlement: the instrument leaves the book with its positions)
        else:
            und = update.underlying
            moved = [und] if und is not None and und in snapshot.underlyings else []
            self.book.update_market(snapshot, moved)
            apply_dynamic_psr(self.book, self.market, und)
            rows = all_records(self.records.values())
            for account in [a for a in self.unpriced if a in rows and self._priceable(rows[a])]:
                self._sync(rows[account], full=True)
        if not self.records:
            return proofs
        released: list[Output] = []
        if self.holding:
            apply = functools.partial(self._apply_held, ts=update.ts)
            released, changed = release(self.records, self.holding, self.market, update.ts, apply)
            self.touched |= changed
        outputs = self._candidates(update.ts) + self._market_outputs(ref, update.ts)
        # The calls due again at the new event time, here rather than only on the worker's
        # one-second timer: event time moves only with market updates, and a timer firing at
        # some wall-clock moment between this update and the fills that follow it repeated a
        # call or not as it happened, so the same inputs gave other calls.
        return proofs + released + outputs + self.on_timer(self.market.as_of)

    def _candidates(self, ts: datetime) -> list[Output]:
        """This partition's ADL candidates for the fund's owner, once per interval of event
        time (a new batch replaces the last one)."""
        adl = self.market.params.adl
        now = ts.timestamp()
        if self.candidates_ts is not None and now - self.candidates_ts < adl.candidate_interval_s:
            return []
        self.candidates_ts = now
        rows = all_records(self.records.values())
        priced = {a: r for a, r in rows.items() if a in self.book and a not in self.unpriced}
        if not priced:
            return []
        return candidate_outputs(priced, self.book, adl.candidates_per_side, self.partition, ts)

    # ----- outputs ----------------------------------------------------------------------

    def _margin(self, accounts: list[str]) -> MarginReport | None:
        """The book's report for some accounts (None when none is in the book)."""
        present = [a for a in accounts if a in self.book and a not in self.unpriced]
        return self.book.margin(present) if present else None

    def settle_one(self, applied: Applied | None) -> list[Output]:
        """The outputs of one applied input (none for a replay)."""
        return self.settle([applied])[0] if applied is not None else []

    def settle(self, applied: Sequence[Applied]) -> list[list[Output]]:
        """The outputs of applied inputs of distinct accounts, in order (``_statuses``); a held
        input has none yet."""
        saying = [a for a in applied if a.says_status]
        said = iter(self._statuses(saying) if saying else [])
        return [next(said) if a.says_status else a.outputs for a in applied]

    def _statuses(self, applied: Sequence[Applied]) -> list[list[Output]]:
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
        return self.emitter.emit(
            self.book, report, rows, applied.reason, ref, ts, force=True, family=family
        )

    def _market_outputs(self, ref: InputRef, ts: datetime) -> list[Output]:
        """Statuses after a market move: state changes and ratio moves beyond the parameter;
        every family a settlement closed positions of says its status."""
        report = self.book.margin()
        family = rows_of(self.records.values())
        priced = [
            i for i, a in enumerate(report.accounts) if a in family and a not in self.unpriced
        ]
        settled = [i for i in priced if family[report.accounts[i]].master.account in self.settled]
        rest = sorted(set(priced) - set(settled))
        outputs = self.emitter.emit(
            self.book, report, np.array(settled, np.int64), "SETTLEMENT", ref, ts, True, family
        )
        return outputs + self.emitter.emit(
            self.book, report, np.array(rest, np.int64), "MARKET", ref, ts, False, family
        )

    def on_timer(self, now: float) -> list[Output]:
        """Repeat the margin call of every account still in MARGIN_CALL after the interval."""
        repeat = self.market.params.status.margin_call_repeat_s
        # Every second on every partition: look only at families with a call outstanding (a
        # scan of plain attributes), not a row per account (1.2 s a tick at 100,000 accounts).
        family = rows_of(m for m in self.records.values() if calling(m))
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
        return self.emitter.repeat_calls(report, family, self.partition, now)
