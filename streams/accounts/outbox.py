"""The outbox: an input's encoded outputs kept beside the state it changed, so that a replay
after a crash re-sends what the crash may have lost.

Why. Faust commits an input's offset only after flushing the producer, so whatever an input
before the committed offset sent is on the broker; inputs after it are read again after a crash,
and the portfolio record's applied offsets make that replay skip the ones already applied. But
the table's changelog and the outputs are different topic partitions, with no order between
them: a worker killed at the wrong moment can leave the changelog saying "input X applied" while
X's status, margin call, liquidation orders or fee never reached the broker, and the replay,
skipping X, would never send them (the fault tests saw it: statuses missing for the last fills
a killed worker applied). So each table value carries the encoded outputs of its latest inputs,
written in the same changelog record as the state they came from; an input found already applied
on replay re-sends them byte for byte (same deterministic ids: consumers drop the copies they
already have).

An entry leaves the outbox at the value's next write once its outputs are known to be on the
broker: acknowledged in this process, or its input lies before the first offset this process
read from the partition since its assignment (the committed offset, which Faust commits only
after flushing the producer). A value thus usually carries its last input's outputs only.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams.records import MarketUpdate, Record

if TYPE_CHECKING:
    from streams.accounts.outputs import InputRef, Output
    from streams.accounts.processor import AccountProcessor
    from streams.codec import AvroCodec

Entry = list[Any]
"""[input topic, partition, offset, [[output topic, key, base64 value], ...]] (JSON-ready)."""

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Encoded:
    """An output ready to send: logical topic, key and the framed Avro value."""

    topic: str
    key: str
    value: bytes


def entry(topic: str, partition: int, offset: int, outputs: Sequence[Encoded]) -> Entry:
    """The outbox entry of an input's outputs."""
    packed = [[o.topic, o.key, base64.b64encode(o.value).decode("ascii")] for o in outputs]
    return [topic, partition, offset, packed]


def outputs_of(outbox: Iterable[Entry], topic: str, partition: int, offset: int) -> list[Encoded]:
    """The outputs an outbox keeps for one input (none when it keeps nothing for it)."""
    found: list[Encoded] = []
    for t, p, o, packed in outbox:
        if (t, p, o) == (topic, partition, offset):
            found += [Encoded(ot, key, base64.b64decode(value)) for ot, key, value in packed]
    return found


class Deliveries:
    """What this process knows of the delivery of the outputs it sent, per input partition.

    ``horizon`` is the last offset handled since the partition's assignment (the first offset
    read there, minus one, before anything is handled); ``pending`` counts, per input offset,
    the outputs filed (``expect``) and not yet acknowledged (``watch``). An input's outputs are
    known delivered when its offset is within the horizon and nothing of it is pending.
    """

    def __init__(self) -> None:
        self.horizon: dict[TopicPartition, int] = {}
        self.pending: dict[TopicPartition, dict[int, int]] = {}

    def handling(self, topic: str, partition: int, offset: int) -> None:
        """An input is being handled (call before its outputs are sent)."""
        tp = (topic, partition)
        self.horizon[tp] = max(self.horizon.get(tp, offset - 1), offset)

    def reset(self, partitions: Iterable[int]) -> None:
        """Partitions were assigned or revoked: reading restarts from the committed offset."""
        gone = set(partitions)
        for tp in [tp for tp in self.horizon if tp[1] in gone]:
            del self.horizon[tp]
        for tp in [tp for tp in self.pending if tp[1] in gone]:
            del self.pending[tp]  # what was sent was flushed before the offsets were committed

    def expect(self, topic: str, partition: int, offset: int, count: int) -> None:
        """Count outputs of an input as pending before they are handed to the producer (a batch
        sends its inputs' outputs at its end: until then they must not look delivered)."""
        if count:
            counts = self.pending.setdefault((topic, partition), {})
            counts[offset] = counts.get(offset, 0) + count

    def watch(self, topic: str, partition: int, offset: int, futures: Sequence[Any]) -> None:
        """Take expected outputs off the pending count as the producer acknowledges them
        (nothing to do when the partition was reset since they were expected)."""
        counts = self.pending.get((topic, partition))
        if counts is None or offset not in counts:
            return

        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return  # never delivered: the entry stays in the outbox
            left = counts[offset] - 1
            if left:
                counts[offset] = left
            else:
                del counts[offset]

        for fut in futures:
            fut.add_done_callback(done)

    def delivered(self, topic: str, partition: int, offset: int) -> bool:
        """True when an input's outputs are known to be on the broker."""
        tp = (topic, partition)
        horizon = self.horizon.get(tp)
        return horizon is not None and offset <= horizon and offset not in self.pending.get(tp, {})

    def keep(self, outbox: Iterable[Entry], new: Entry | None = None) -> list[Entry]:
        """An outbox without the entries known delivered, plus a new entry if any."""
        kept = [e for e in outbox if not self.delivered(e[0], e[1], e[2])]
        if new is not None:
            kept.append(new)
        return kept


class Outbox:
    """The account agent's outboxes: one per portfolio record (its ``outbox``) and one per
    partition (outputs owned by no record, e.g. solvency roots, kept with the partition's
    market state), the market offset each partition applied, and the deliveries.

    Fills and transfers are known applied from the record's offsets; market updates from the
    partition's ``applied`` offset of the market broadcast, kept with its market state.
    """

    def __init__(self) -> None:
        self.deliveries = Deliveries()
        self.applied: dict[int, int] = {}
        self.entries: dict[int, list[Entry]] = {}

    # ----- the partition's own state (a part of its market-state table value) --------------

    def load(self, partition: int, data: Mapping[str, Any] | None) -> None:
        """Restore a partition's market offset and outbox from its market-state value."""
        data = data or {}
        self.applied[partition] = int(data.get("applied", -1))
        self.entries[partition] = list(data.get("outbox", []))

    def dump(self, partition: int) -> dict[str, Any]:
        """The partition's part of its market-state value (pruned)."""
        kept = self.deliveries.keep(self.entries.get(partition, []))
        self.entries[partition] = kept
        return {"applied": self.applied.get(partition, -1), "outbox": kept}

    # ----- inputs ------------------------------------------------------------------------

    def receive(self, proc: AccountProcessor, ref: InputRef, value: Record) -> bool:
        """An input of an account partition is being handled; True when it is a replay (it was
        applied before, after a crash or a rebalance: ``stored`` has its outputs)."""
        self.deliveries.handling(ref.topic, ref.partition, ref.offset)
        return self.replayed(proc, ref, value)

    def replayed(self, proc: AccountProcessor, ref: InputRef, value: Record) -> bool:
        """True when the input was applied before (a replay after a crash or a rebalance)."""
        if isinstance(value, MarketUpdate):
            return ref.offset <= self.applied.get(ref.partition, -1)
        record = proc.records.get(getattr(value, "account", ""))
        return record is not None and ref.offset <= record.offsets.get(ref.topic, -1)

    def market_applied(self, ref: InputRef) -> None:
        """A market update was applied on its partition (a replay of it is skipped)."""
        self.applied[ref.partition] = max(self.applied.get(ref.partition, -1), ref.offset)

    def stored(self, proc: AccountProcessor, ref: InputRef, value: Record) -> list[Encoded]:
        """What the outboxes keep of an input's outputs (to send again on its replay): a fill's
        or a transfer's are with its account, a market update's with any account. They are
        pending from now (``expect``), handed to the producer at the batch's end."""
        where = (ref.topic, ref.partition, ref.offset)
        found = outputs_of(self.entries.get(ref.partition, []), *where)
        if isinstance(value, MarketUpdate):
            records = list(proc.records.values())
        else:
            record = proc.records.get(getattr(value, "account", ""))
            records = [record] if record is not None else []
        for record in records:
            if record.outbox:
                found += outputs_of(record.outbox, *where)
        self.expect(ref, len(found))
        return found

    def file(
        self,
        proc: AccountProcessor,
        ref: InputRef,
        outputs: Sequence[Output],
        codec: AvroCodec,
        saving: Iterable[str],
    ) -> tuple[list[Encoded], bool]:
        """Encode an applied input's outputs and put them in the outboxes of the records about
        to be saved (pruning those), the rest in the partition's; the encoded outputs (pending
        from now: ``expect``), and True when the partition's outbox changed (its market-state
        value must be saved too)."""
        saved = set(saving)
        encoded: list[Encoded] = []
        owned: dict[str, list[Encoded]] = {}
        for out in outputs:
            enc = Encoded(out.topic, out.key, codec.encode(out.topic, out.record))
            encoded.append(enc)
            owner = out.owner or out.key
            owned.setdefault(owner if owner in saved else "", []).append(enc)
        where = (ref.topic, ref.partition, ref.offset)
        for account in saved:
            record = proc.records[account]
            mine = owned.get(account)
            record.outbox = self.deliveries.keep(
                record.outbox, entry(*where, mine) if mine else None
            )
        rest = owned.get("")
        if rest:
            self.entries[ref.partition] = self.deliveries.keep(
                self.entries.get(ref.partition, []), entry(*where, rest)
            )
        self.expect(ref, len(encoded))
        return encoded, bool(rest)

    def unsent(self, proc: AccountProcessor) -> list[tuple[InputRef, list[Encoded]]]:
        """Everything a partition's outboxes keep, by input, expected from now on: when a
        partition is taken over, whatever its previous owner filed and may not have delivered
        goes out again at once, byte for byte. A replay would send it too, but only if the
        consumer hands the input over again, which it may not (it has skipped records after a
        restart); and the first offset this process reads is then no proof that the earlier
        inputs' outputs are on the broker."""
        from streams.accounts.outputs import InputRef

        found: dict[tuple[str, int, int], list[Encoded]] = {}
        outboxes = [
            self.entries.get(proc.partition, []),
            *(r.outbox for r in proc.records.values()),
        ]
        for outbox in outboxes:
            for t, p, o, packed in outbox:
                encoded = [Encoded(ot, key, base64.b64decode(value)) for ot, key, value in packed]
                found.setdefault((t, p, o), []).extend(encoded)
        unsent = [(InputRef(*where), outputs) for where, outputs in sorted(found.items())]
        for ref, outputs in unsent:
            self.expect(ref, len(outputs))
        return unsent

    def expect(self, ref: InputRef, count: int) -> None:
        """Outputs of an input will be handed to the producer at the batch's end: pending."""
        self.deliveries.expect(ref.topic, ref.partition, ref.offset, count)

    def watch(self, ref: InputRef, futures: Sequence[Any]) -> None:
        """Expected outputs of an input were handed to the producer: pending until acknowledged."""
        self.deliveries.watch(ref.topic, ref.partition, ref.offset, futures)

    def reset(self, partitions: Iterable[int]) -> None:
        """Partitions assigned or revoked: their state is read again from the table."""
        parts = set(partitions)
        self.deliveries.reset(parts)
        for partition in parts:
            self.applied.pop(partition, None)
            self.entries.pop(partition, None)
