"""The Faust application: the market agent, the account agent, the tables and the call timer.

The market agent validates market inputs (partitioned by underlying, so each source of an
underlying meets its peers) and broadcasts every accepted update to every partition of the
market-broadcast topic. The account agent reads fills, collateral and the broadcast, which are
co-partitioned by account; per partition it keeps an AccountProcessor rebuilt from the portfolio
table when the partition is (re)assigned. Every table write follows the event's partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.types import TP
from pydantic import ValidationError

from engine.params import RiskParams
from infra.settings import Settings
from streams.accounts.batch import AccountBatch
from streams.accounts.cursor import Cursor
from streams.accounts.outbox import Encoded, Outbox
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor, InputRef, InputRejected, Output
from streams.accounts.proofs import publisher, save_leaves
from streams.codec import AvroCodec, CodecError
from streams.faust.metrics import WorkerMetrics
from streams.faust.table_writes import writing_to
from streams.fund.outbox import FundOutbox
from streams.fund.owner import FUND_KEY, FundOwner
from streams.kafka_io import Received, read_range
from streams.market.state import MarketState, StaleParams, market_from_dict
from streams.market.table import MarketTable, load_market
from streams.records import (
    AdlCandidate,
    BookDepth,
    CollateralTransfer,
    DlqReason,
    DlqRecord,
    Fill,
    InstrumentRecord,
    InsuranceClaim,
    LiquidationFee,
    MarketUpdate,
    MarketUpdateKind,
    OraclePrice,
    RiskParamsRecord,
    VolSurfaceRecord,
)

log = logging.getLogger("spma")
MARKET_INPUTS = ("oracle-prices", "book-depth", "vol-surfaces", "instruments", "risk-params")
ACCOUNT_INPUTS = ("fills", "collateral", "market-broadcast")
ACCOUNT_KEYED = frozenset({"fills", "collateral"})  # keyed by the master account
FUND_INPUTS = ("insurance-claims",)
OUTPUTS = (
    "margin-status",
    "margin-calls",
    "liquidations",
    "insurance-fund",
    "adl",
    "dlq",
    "market-broadcast",
    "solvency-proofs",
)
WAITING = "waiting"  # an input applied, its status due when its wave is settled
PARAMS_KEY = "in-force"  # the market agent's parameter set and versions (risk-params-state)
CURSOR_KEY = (
    "\x00cursor/{partition}"  # the last input rejected per topic (streams/accounts/cursor.py)
)


@dataclass(frozen=True)
class _Replayed:
    """A record read from the broker by the worker itself, shaped like a Faust event."""

    message: Received


class Worker:
    """Everything one worker process holds besides Faust's own machinery."""

    def __init__(self, settings: Settings, app: faust.App, codec: AvroCodec) -> None:
        self.settings = settings
        self.app = app
        self.codec = codec
        self.market = MarketState()
        self.processors: dict[int, AccountProcessor] = {}
        self.table = self.new_table("portfolios", settings.partitions)
        self.fund_table = self.new_table("insurance-fund-state", 1)
        self.params_table = self.new_table("risk-params-state", 1)
        self.params_restored = False  # the market agent's set in force, read from its table
        self.market_table = MarketTable(self.table)
        self.fund: FundOwner | None = None
        self.fund_outbox = FundOutbox()
        self.fund_event_at = 0.0  # monotonic time of the last claims-topic event read or sent
        self.metrics = WorkerMetrics()
        self.outbox = Outbox()
        self.cursor = Cursor()
        self.batch = AccountBatch()  # the account inputs being handled (streams/accounts/batch.py)
        self.topics = {
            name: app.topic(
                settings.topic(name),
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=settings.partitions,
                internal=False,
            )
            for name in {*MARKET_INPUTS, *ACCOUNT_INPUTS, *FUND_INPUTS, *OUTPUTS}
        }
        self.now_offset = 0.0

    # ----- state in the table --------------------------------------------------------------

    def new_table(self, name: str, partitions: int) -> Any:
        """A changelogged table of str keys and bytes values with the store's sizes and the
        changelogs' topic configuration."""
        return self.app.Table(
            name,
            default=None,
            partitions=partitions,
            key_type=str,
            value_type=bytes,
            options=self.settings.table_options(),
            extra_topic_configs=self.settings.changelog_topic_config(),
        )

    def processor(self, partition: int) -> AccountProcessor:
        """The partition's processor, rebuilt from the table the first time it is needed."""
        proc = self.processors.get(partition)
        if proc is not None:
            return proc
        state = load_market(self.table, partition)
        market = market_from_dict(state) if state else MarketState()
        self.outbox.load(partition, state)
        proc = AccountProcessor(partition, market)
        proc.prover = publisher(self.settings)
        records = {}
        for key, value in list(self.table.items()):
            if value is None or key.startswith("\x00"):
                continue
            record = PortfolioRecord.from_dict(orjson.loads(value))
            if record.partition == partition:
                records[key] = record
        proc.load(records)
        self.load_cursor(partition, records.values())
        self.processors[partition] = proc
        log.info("partition %s: rebuilt %s accounts", partition, len(records))
        return proc

    def load_cursor(self, partition: int, records: Iterable[PortfolioRecord]) -> None:
        """How far the table says the partition's inputs were handled: the offsets its records
        applied, the market updates applied and the inputs rejected."""
        handled: dict[str, int] = {}
        for record in records:
            for topic, offset in record.offsets.items():
                handled[topic] = max(handled.get(topic, -1), offset)
        market = self.outbox.applied.get(partition, -1)
        if market >= 0:
            handled[self.settings.topic("market-broadcast")] = market
        self.cursor.load(partition, handled)
        raw = self.table.get(CURSOR_KEY.format(partition=partition))
        self.cursor.load_rejected(partition, orjson.loads(raw) if raw else {})

    def save(
        self,
        proc: AccountProcessor,
        accounts: set[str],
        market: bool,
        kinds: Iterable[MarketUpdateKind] = (),
    ) -> None:
        """Write changed records (and the partition's market state: the parts that the update
        kinds changed, streams/market/table.py) to the table."""
        for account in accounts:
            self.table[account] = orjson.dumps(proc.records[account].to_dict())
        if market:
            outbox = self.outbox.dump(proc.partition)
            self.market_table.save(proc.partition, proc.market, outbox, kinds)

    def forget(self, partitions: set[int]) -> None:
        """Drop processors of revoked partitions (their state lives on in the table)."""
        for partition in partitions:
            self.processors.pop(partition, None)
        self.outbox.reset(partitions)
        self.cursor.reset(partitions)
        self.market_table.forget(partitions)

    def fund_owner(self) -> FundOwner:
        """The fund's state, restored from its table the first time it is needed."""
        if self.fund is None:
            settlement = self.market.params.settlement_currency
            raw = self.fund_table.get(FUND_KEY.format(currency=settlement))
            data = orjson.loads(raw) if raw else None
            self.fund = (
                FundOwner.from_dict(data)
                if data
                else FundOwner(currency=settlement, settlement_asset=settlement)
            )
            self.fund_outbox.load(data)
        return self.fund

    # ----- sending --------------------------------------------------------------------------

    async def send(self, outputs: list[Output]) -> None:
        """Encode and send outputs."""
        await self.hand_over([self.encoded(o) for o in outputs])

    def encoded(self, out: Output) -> Encoded:
        """An output ready to send."""
        return Encoded(out.topic, out.key, self.codec.encode(out.topic, out.record))

    async def hand_over(self, outputs: list[Encoded]) -> list[Any]:
        """Hand encoded outputs to the producer, in order; their delivery futures."""
        producer = self.app.producer
        futures = []
        for out in outputs:
            topic = self.settings.topic(out.topic)
            partition = self.input_partition(out.topic, out.key)
            futures.append(
                await producer.send(topic, out.key.encode(), out.value, partition, None, None)
            )
            self.metrics.sent(out.topic)
        return futures

    def input_partition(self, topic: str, key: str) -> int | None:
        """The partition of a record the worker writes to an account input topic (a payout on
        collateral): the one the exchange's producers use for the key, librdkafka's default
        (CRC32 of the key), so that it meets its account; Faust's own partitioner (murmur2)
        would put it on another partition. None (Faust decides) for every other topic."""
        if topic not in ACCOUNT_KEYED:
            return None
        return zlib.crc32(key.encode()) % self.settings.partitions

    def send_encoded(self, ref: InputRef, outputs: list[Encoded]) -> None:
        """Queue an input's encoded outputs for the batch's end; pending in the outbox (which
        keeps them) from now until acknowledged."""
        self.outbox.expect(ref, len(outputs))
        self.batch.send(ref, outputs)

    async def on_account_batch(self, events: Sequence[Any]) -> None:
        """Handle a batch of account inputs in order, then send their outputs
        (streams/accounts/batch.py)."""
        self.batch = AccountBatch()
        for event in events:
            msg = event.message
            with writing_to(msg.topic, msg.partition):  # a rejection's cursor, proof leaves
                await self.guarded(self.on_account_input, event)
        self.settle_waves()
        batch, self.batch = self.batch, AccountBatch()
        await self.send_batch(batch)
        self.metrics.batch(len(events))

    def settle_waves(self) -> None:
        """Settle every partition's wave (at the batch's end, and before the batch awaits
        anything: a rebalance can only happen at an await, and it must find every input handled
        so far in the table, which a partition's next processor is rebuilt from)."""
        for partition in list(self.batch.waves):
            self.settle_wave(partition)

    async def send_batch(self, batch: AccountBatch) -> None:
        """Hand a batch's outputs to the producer in input order; each input's stay pending in
        the outbox until acknowledged. Outputs of a partition revoked meanwhile go out too: a
        consumer drops a copy by its id, nobody can restore a loss."""
        for ref, outputs in batch.sends:
            futures = await self.hand_over(outputs)
            if any(out.topic in FUND_INPUTS for out in outputs):  # on their way to the fund
                self.fund_event_at = time.monotonic()  # not quiet (expire_fund)
            self.outbox.watch(ref, futures)

    async def reject(self, event: Any, reason: DlqReason, detail: str) -> None:
        """Send a record to the dlq with its origin and the reason."""
        msg = event.message
        record = DlqRecord(
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=msg.value,
            reason=reason,
            detail=detail[:2000],
            ts=datetime.now(tz=UTC),
        )
        log.warning(
            "dlq %s %s:%s@%s %s", reason.value, msg.topic, msg.partition, msg.offset, detail
        )
        if self.logical(msg.topic) in ACCOUNT_INPUTS:
            self.settle_waves()  # before the await below (settle_waves says why)
            handled = self.cursor.reject(msg.topic, msg.partition, msg.offset)
            self.table[CURSOR_KEY.format(partition=msg.partition)] = orjson.dumps(handled)
        await self.topics["dlq"].send(key=msg.key, value=self.codec.encode("dlq", record))
        self.metrics.rejected(reason.value)

    def logical(self, topic: str) -> str:
        """Topic name without the prefix."""
        return topic.removeprefix(self.settings.topic_prefix)

    def check_time(self, ts: datetime) -> None:
        """Reject timestamps from the future beyond the tolerance."""
        tolerance = self.market.params.status.future_ts_tolerance_s
        if ts.timestamp() > self.clock() + tolerance:
            raise InputRejected(
                DlqReason.FUTURE_TIMESTAMP,
                f"ts {ts.isoformat()} is more than {tolerance:g} s ahead",
            )

    def clock(self) -> float:
        """Wall-clock now (epoch seconds), shifted by the test offset if any."""
        return time.time() + self.now_offset

    # ----- handlers -------------------------------------------------------------------------

    async def on_market_input(self, event: Any) -> str:
        """Validate a market input and broadcast the accepted update to every partition; the
        outcome ('applied', or 'conflated' when nothing is broadcast)."""
        msg = event.message
        topic = self.logical(msg.topic)
        uid = f"{msg.topic}:{msg.partition}:{msg.offset}"
        value = self.codec.decode(topic, msg.value)
        self.check_time(value.ts)  # type: ignore[attr-defined]
        if isinstance(value, RiskParamsRecord):
            self.restore_params()
        handlers = {
            OraclePrice: self.market.on_price,
            BookDepth: self.market.on_depth,
            VolSurfaceRecord: self.market.on_vol,
            InstrumentRecord: self.market.on_instrument,
            RiskParamsRecord: self.market.on_params,
        }
        try:
            update = handlers[type(value)](value, uid)
        except StaleParams as exc:
            raise InputRejected(DlqReason.STALE_PARAMS, str(exc)[:500]) from None
        except (ValidationError, ValueError) as exc:
            raise InputRejected(
                DlqReason.BAD_PARAMS if topic == "risk-params" else DlqReason.INVALID_VALUE,
                str(exc)[:500],
            ) from None
        if update is None:
            return "conflated"
        if isinstance(value, RiskParamsRecord):
            self.save_params()
        data = self.codec.encode("market-broadcast", update)
        key = (update.underlying or "").encode()
        for partition in range(self.settings.partitions):
            await self.topics["market-broadcast"].send(key=key, value=data, partition=partition)
        self.metrics.sent("market-broadcast", self.settings.partitions)
        return "applied"

    async def on_account_input(self, event: Any) -> str:
        """Apply a fill, a transfer or a market update on its partition; the outcome: 'applied'
        (a market update), WAITING (a fill or transfer applied, its status due with its wave),
        or 'duplicate' (an offset already applied, whose outputs the outbox sends again:
        streams/accounts/outbox.py). Outputs go out at the batch's end."""
        msg = event.message
        ref = InputRef(msg.topic, msg.partition, msg.offset)
        await self.in_order(ref)
        proc = self.processor(msg.partition)  # after any await: a rebalance may have rebuilt it
        topic = self.logical(msg.topic)
        value = self.codec.decode(topic, msg.value)
        self.outbox.handling(ref)
        if self.outbox.replayed(proc, ref, value):
            self.settle_wave(proc.partition)
            self.send_encoded(ref, self.outbox.stored(proc, ref, value))
            return "duplicate"
        if isinstance(value, MarketUpdate):
            self.settle_wave(proc.partition)
            started = time.perf_counter()
            outputs = proc.on_market(value, ref)
            self.metrics.revaluation.observe(time.perf_counter() - started)
            changed = {o.owner or o.key for o in outputs} & proc.records.keys()
            self.outbox.market_applied(ref)
            encoded, _ = self.outbox.file(proc, ref, outputs, self.codec, changed)
            self.save(proc, changed, market=True, kinds=(value.kind,))
            save_leaves(self.table, proc)
            self.send_encoded(ref, encoded)
            return "applied"
        self.check_time(value.ts)  # type: ignore[attr-defined]
        account = value.account  # type: ignore[attr-defined]
        if self.batch.waiting(proc.partition, account):
            self.settle_wave(proc.partition)
        if isinstance(value, Fill):
            applied = proc.apply_fill(value, ref)
        else:
            assert isinstance(value, CollateralTransfer)
            applied = proc.apply_transfer(value, ref)
        if applied is None:  # an offset already applied (the outbox check saw it first)
            return "duplicate"
        self.batch.join(proc, applied)
        return WAITING

    def settle_wave(self, partition: int) -> None:
        """The statuses of a partition's waiting inputs from one margin pass; in input order,
        each input's outputs filed in its account's outbox, the record written, the outputs
        queued."""
        wave = self.batch.take_wave(partition)
        if wave is None:
            return
        proc = wave.processor
        if self.processors.get(partition) is not proc:  # settled before every await: never
            log.error(
                "partition %s changed hands with %s inputs unsettled", partition, len(wave.inputs)
            )
            return
        started = time.perf_counter()
        applied = list(wave.inputs.values())
        with writing_to(self.settings.topic("fills"), partition):
            for one, outputs in zip(applied, proc.settle(applied), strict=True):
                saving = {one.record.account} & proc.records.keys()
                encoded, shared = self.outbox.file(proc, one.ref, outputs, self.codec, saving)
                self.save(proc, saving, market=shared)
                self.send_encoded(one.ref, encoded)
        share = (time.perf_counter() - started) / len(applied)
        for one in applied:  # each input's own time plus its share of the wave's
            own = self.batch.spent.pop(one.ref, 0.0)
            self.metrics.handled(self.logical(one.ref.topic), "applied", own + share)

    async def in_order(self, ref: InputRef) -> None:
        """Handle the partition's earlier inputs first: when the consumer hands over an input
        past a hole (it skipped records, accounts/cursor.py), read the hole from the broker and
        handle each record of it in order, then tell the consumer they are done."""
        topic, partition, offset = ref.topic, ref.partition, ref.offset
        # The partition's progress comes from its table state, loaded with its processor: a
        # partition just assigned must not look empty (its first input would read the whole
        # partition again as a hole, every record a replay).
        self.processor(partition)
        want = self.cursor.check(topic, partition, offset)
        if want is not None:
            log.warning(
                "%s:%s: got %s, reading %s to %s again", topic, partition, offset, want, offset
            )
            self.settle_waves()  # before the await (settle_waves says why)
            hole = await asyncio.to_thread(
                read_range, self.settings, topic, partition, want, offset
            )
            for m in hole:
                self.cursor.accept(topic, partition, m.offset)
                await self.guarded(self.on_account_input, _Replayed(m))
            self.cursor.accept(topic, partition, offset)
            consumer = self.app.consumer
            add_gap = getattr(consumer, "_add_gap", None)  # so that its commits move on
            if add_gap is not None:
                await add_gap(TP(topic, partition), want, offset - 1)
        self.cursor.handled(topic, partition, offset)

    async def on_fund_input(self, event: Any) -> str:
        """The fund's single owner: fees, ADL candidates and claims, in order; a replayed input
        sends its stored outputs again (streams/fund/outbox.py)."""
        self.fund_event_at = time.monotonic()
        msg = event.message
        value = self.codec.decode("insurance-claims", msg.value)
        owner = self.fund_owner()
        self.fund_outbox.handling(msg.topic, msg.offset)
        if self.fund_outbox.replayed(msg.offset):
            await self.send_fund(
                msg.topic, msg.offset, self.fund_outbox.resend(msg.topic, msg.offset)
            )
            return "duplicate"
        adl = self.market.params.adl
        owner.pending_timeout_s, owner.takeover_slippage = (
            adl.pending_timeout_s,
            adl.takeover_slippage,
        )
        if isinstance(value, AdlCandidate):
            owner.on_candidate(value)
            outputs = owner.retry() if owner.pending else []
        elif isinstance(value, LiquidationFee):
            outputs = owner.on_fee(value) + (owner.retry() if owner.pending else [])
        else:
            assert isinstance(value, InsuranceClaim)
            outputs = owner.on_claim(value)
        encoded = [self.encoded(o) for o in outputs]
        self.fund_outbox.file(msg.topic, msg.offset, encoded)
        if outputs or not isinstance(value, AdlCandidate):
            self.save_fund(owner)
        await self.send_fund(msg.topic, msg.offset, encoded)
        return "applied"

    def restore_params(self) -> None:
        """Put the set in force and the newest version of each set name back into the market
        agent's state from its table, once after an assignment (a restarted worker must refuse
        a stale version as its predecessor would have)."""
        if self.params_restored:
            return
        raw = self.params_table.get(PARAMS_KEY)
        if raw:
            data = orjson.loads(raw)
            self.market.use_params(RiskParams.from_json(data["params"]))
            for name, version in data["versions"].items():
                known = self.market.param_versions.get(name, 0)
                self.market.param_versions[name] = max(known, int(version))
        self.params_restored = True

    def save_params(self) -> None:
        """Write the market agent's set in force and versions seen to its table (partition 0,
        the risk-params topic's only one)."""
        value = {"params": self.market.params.to_json(), "versions": self.market.param_versions}
        self.params_table[PARAMS_KEY] = orjson.dumps(value)

    def save_fund(self, owner: FundOwner) -> None:
        """Write the fund's state, with its outbox, to its table."""
        value = owner.to_dict() | self.fund_outbox.dump()
        self.fund_table[FUND_KEY.format(currency=owner.currency)] = orjson.dumps(value)

    async def send_fund(self, topic: str, offset: int, outputs: list[Encoded]) -> None:
        """Send a claims-topic input's encoded outputs; pending in the fund's outbox until
        acknowledged."""
        futures = await self.hand_over(outputs)
        self.fund_outbox.watch(topic, offset, futures)

    async def expire_fund(self, quiet_s: float) -> None:
        """Hand positions no counterparty took within the timeout to the book, once the claims
        topic has been quiet for a moment (no batch of candidates is half-read, and none this
        worker just sent is on its way: an account batch that ran long sends its partitions'
        candidates at its end, when the fund has heard nothing for that long). Only the worker
        that has read the claims topic since its last assignment holds ``fund``."""
        owner = self.fund
        if owner is None or not owner.pending:
            return
        if time.monotonic() - self.fund_event_at < quiet_s:
            return
        outputs = owner.retry(takeover=True)
        if outputs:
            # A timer has no current event to pick the partition: the fund's table has one.
            with writing_to(self.settings.topic("insurance-claims"), 0):
                self.save_fund(owner)
            await self.send(outputs)

    async def guarded(self, handler: Any, event: Any) -> None:
        """Run a handler; bad input goes to the dlq and processing goes on. Every input handled
        is counted by topic and outcome and timed by kind (metrics.py)."""
        started = time.perf_counter()
        outcome = "dlq"
        try:
            outcome = await handler(event)
        except CodecError as exc:
            await self.reject(event, exc.reason, exc.detail)
        except InputRejected as exc:
            await self.reject(event, exc.reason, exc.detail)
        spent = time.perf_counter() - started
        msg = event.message
        if outcome == WAITING:  # counted when its wave is settled, with its share of the pass
            self.batch.spent[InputRef(msg.topic, msg.partition, msg.offset)] = spent
            return
        self.metrics.handled(self.logical(msg.topic), outcome, spent)
