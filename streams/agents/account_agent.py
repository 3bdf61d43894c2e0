"""The account agent: fills, collateral transfers and the market broadcast of a worker's account
partitions, a batch at a time, each input through one pipeline.

An input is put in order (a hole the consumer skipped is read first: streams/accounts/cursor.py),
decoded, skipped if it is a replay (its stored outputs go out again: streams/accounts/outbox.py),
applied by its partition's processor, and waits in its partition's wave; a wave is settled (one
margin pass, streams/accounts/batch.py says when), each input's outputs are filed in the outbox,
its records persisted, and its outputs queued; the batch's end hands them to the producer. The
agent decides when; the processor decides what.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from infra.settings import Settings
from streams.accounts.batch import AccountBatch
from streams.accounts.outputs import InputRef
from streams.accounts.processor import AccountProcessor
from streams.accounts.proofs import save_leaves
from streams.accounts.validation import check_key
from streams.agents.clock import Clock
from streams.agents.guard import WAITING, Guard, Replayed
from streams.agents.metrics import WorkerMetrics
from streams.agents.partitions import Partitions
from streams.agents.private import add_gap, writing_to
from streams.agents.recovery import RecoveryCheck
from streams.agents.sender import Sender
from streams.codec import AvroCodec
from streams.kafka_io import read_range
from streams.market.state import MarketState
from streams.records import CollateralTransfer, DlqRecord, Fill, MarketUpdate, Record
from streams.scaling.origin import Origin, already_routed, origin_of
from streams.topics.catalog import FUND_INPUTS, Topic

log = logging.getLogger("spma")


class AccountAgent:
    """Handles a worker's account inputs, partition by partition, in order."""

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        market: MarketState,
        partitions: Partitions,
        sender: Sender,
        guard: Guard,
        clock: Clock,
        metrics: WorkerMetrics,
        on_fund_output: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.market = market  # the market agent's: its parameters judge input times
        self.partitions = partitions
        self.sender = sender
        self.guard = guard
        self.clock = clock
        self.metrics = metrics
        self.on_fund_output = on_fund_output  # the fund agent is not quiet (its expiry waits)
        self.batch = AccountBatch()
        self.fills_topic = settings.account_topic(Topic.FILLS)  # the generation's
        catchup = metrics.catchup.labels("portfolios")
        self.recovery = RecoveryCheck(settings, partitions.table, catchup)  # before a processor

    # ----- a batch ---------------------------------------------------------------------------

    async def on_batch(self, events: Sequence[Any]) -> None:
        """Handle a batch of account inputs in order, then send their outputs."""
        self.batch = AccountBatch()
        for event in events:
            msg = event.message
            with writing_to(msg.topic, msg.partition):  # a rejection's cursor, proof leaves
                await self.guarded(event)
        self.settle_waves()
        batch, self.batch = self.batch, AccountBatch()
        await self.send_batch(batch)
        self.metrics.batch(len(events))

    async def guarded(self, event: Any) -> None:
        """One input through the guard; an input left waiting is timed when its wave settles."""
        outcome, spent = await self.guard.run(self.on_input, event, self.before_reject)
        if outcome == WAITING:
            msg = event.message
            self.batch.spent[InputRef(msg.topic, msg.partition, msg.offset)] = spent

    def before_reject(self, msg: Any) -> None:
        """A rejected input counts as handled: its partition's wave is settled first (before the
        dlq send's await, settle_waves says why), then the cursor and its table entry move."""
        self.settle_waves()
        self.partitions.save_rejected(msg.topic, msg.partition, msg.offset)

    async def send_batch(self, batch: AccountBatch) -> None:
        """Hand a batch's outputs to the producer in input order, once the table writes that
        file them are acknowledged; each input's stay pending in the outbox until acknowledged.
        Outputs of a partition revoked meanwhile go out too: a consumer drops a copy by its id,
        nobody can restore a loss."""
        if batch.sends:
            await self.sender.after_table_writes()
        for ref, outputs in batch.sends:
            futures = await self.sender.hand_over(outputs)
            if any(out.topic in FUND_INPUTS for out in outputs):  # on their way to the fund
                self.on_fund_output()
            self.partitions.outbox.watch(ref, futures)

    # ----- one input -------------------------------------------------------------------------

    async def on_input(self, event: Any) -> str:
        """Put an input in order, decode it, skip a replay, apply it; the outcome: 'applied' (a
        market update), WAITING (a fill or transfer applied, its status due with its wave), or
        'duplicate' (a replay, whose stored outputs go out again)."""
        msg = event.message
        ref = InputRef(msg.topic, msg.partition, msg.offset)
        proc = await self.in_order(ref)
        value = self.codec.decode(self.settings.logical_topic(msg.topic), msg.value)
        outbox = self.partitions.outbox
        if outbox.receive(proc, ref, value):
            self.settle_wave(proc.partition)
            self.batch.send(ref, outbox.stored(proc, ref, value))
            return "duplicate"
        if isinstance(value, MarketUpdate):
            self.apply_market(proc, ref, value)
            return "applied"
        origin = origin_of(getattr(msg, "headers", None))
        return self.apply_account(proc, ref, value, msg.key, msg.value, origin)

    def apply_market(self, proc: AccountProcessor, ref: InputRef, update: MarketUpdate) -> None:
        """Settle the partition's wave, revalue its accounts, file, persist and queue."""
        self.settle_wave(proc.partition)
        self.metrics.event_time(Topic.MARKET_BROADCAST, update.ts.timestamp())
        started = time.perf_counter()
        outputs = proc.on_market(update, ref)
        self.metrics.revaluation.observe(time.perf_counter() - started)
        for out in outputs:  # held inputs refused at their release or deadline
            if isinstance(out.record, DlqRecord):
                self.metrics.rejected(out.record.reason)
        changed = ({o.owner or o.key for o in outputs} | proc.touched) & proc.records.keys()
        outbox = self.partitions.outbox
        outbox.market_applied(ref)
        encoded, _ = outbox.file(proc, ref, outputs, self.codec, changed)
        self.partitions.save(proc, changed, market=True, kinds=(update.kind,))
        save_leaves(self.partitions.table, proc)
        self.batch.send(ref, encoded)

    def apply_account(
        self,
        proc: AccountProcessor,
        ref: InputRef,
        value: Record,
        key: bytes | None,
        raw: bytes | None,
        origin: Origin | None = None,
    ) -> str:
        """Apply a fill or a transfer keyed by its own account (or hold it for its reference,
        its bytes kept for the dlq); its status waits for the partition's wave. A routed input
        (``origin``: a later generation's) its account applied already is a router's copy,
        skipped (streams/scaling/origin.py); one applied marks its upstream offset."""
        assert isinstance(value, Fill | CollateralTransfer)
        check_key(key, value.account)
        record = proc.records.get(value.account)
        if origin is not None and record is not None and already_routed(record.offsets, origin):
            return "duplicate"
        self.clock.check(value.ts, self.market.params.status.future_ts_tolerance_s)
        self.metrics.event_time(self.settings.logical_topic(ref.topic), value.ts.timestamp())
        if self.batch.waiting(proc.partition, value.account):
            self.settle_wave(proc.partition)
        if isinstance(value, Fill):
            applied = proc.apply_fill(value, ref, raw)
        else:
            applied = proc.apply_transfer(value, ref, raw)
        if applied is None:  # an offset already applied (the outbox check saw it first)
            return "duplicate"
        if origin is not None:
            applied.record.mark_offset(origin.topic, origin.offset)
        self.batch.join(proc, applied)
        return WAITING

    # ----- waves -----------------------------------------------------------------------------

    def settle_waves(self) -> None:
        """Settle every partition's wave (at the batch's end, and before the batch awaits
        anything: a rebalance can only happen at an await, and it must find every input handled
        so far in the table, which a partition's next processor is rebuilt from)."""
        for partition in list(self.batch.waves):
            self.settle_wave(partition)

    def settle_wave(self, partition: int) -> None:
        """The statuses of a partition's waiting inputs from one margin pass; in input order,
        each input's outputs filed in its account's outbox, the record written, the outputs
        queued."""
        wave = self.batch.take_wave(partition)
        if wave is None:
            return
        proc = wave.processor
        if self.partitions.processors.get(partition) is not proc:  # settled before every await
            log.error(
                "partition %s changed hands with %s inputs unsettled", partition, len(wave.inputs)
            )
            return
        started = time.perf_counter()
        applied = list(wave.inputs.values())
        outbox = self.partitions.outbox
        with writing_to(self.fills_topic, partition):
            for one, outputs in zip(applied, proc.settle(applied), strict=True):
                saving = {one.record.account} & proc.records.keys()
                encoded, shared = outbox.file(proc, one.ref, outputs, self.codec, saving)
                self.partitions.save(proc, saving, market=shared)
                self.batch.send(one.ref, encoded)
        share = (time.perf_counter() - started) / len(applied)
        for one in applied:  # each input's own time plus its share of the wave's
            own = self.batch.spent.pop(one.ref, 0.0)
            topic = self.settings.logical_topic(one.ref.topic)
            self.metrics.handled(topic, "applied", own + share)

    # ----- order -----------------------------------------------------------------------------

    def held_partitions(self) -> set[int]:
        """The account partitions this worker holds (checked together on first use)."""
        actives = self.sender.app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == self.fills_topic}

    async def in_order(self, ref: InputRef) -> AccountProcessor:
        """Handle the partition's earlier inputs first: when the consumer hands over an input
        past a hole (it skipped records, streams/accounts/cursor.py), read the hole from the
        broker and handle each record of it in order, then tell the consumer they are done. The
        partition's processor (after any await: a rebalance may have rebuilt it). A partition's
        table is checked against its changelog before its processor is built from it."""
        if ref.partition not in self.partitions.processors:
            self.recovery.ensure(ref.partition, self.held_partitions())
            proc = self.partitions.processor(ref.partition)
            for unsent in self.partitions.outbox.unsent(proc):
                self.batch.send(*unsent)
        proc, want = self.partitions.admit(ref)
        if want is None:
            return proc
        topic, partition, offset = ref.topic, ref.partition, ref.offset
        log.warning("%s:%s: got %s, reading %s to %s again", topic, partition, offset, want, offset)
        self.settle_waves()  # before the await (settle_waves says why)
        hole = await asyncio.to_thread(read_range, self.settings, topic, partition, want, offset)
        cursor = self.partitions.cursor
        for m in hole:
            cursor.accept(topic, partition, m.offset)
            await self.guarded(Replayed(m))
        cursor.accept(topic, partition, offset)
        await add_gap(self.sender.app.consumer, topic, partition, want, offset - 1)
        cursor.handled(topic, partition, offset)
        return self.partitions.processor(partition)
