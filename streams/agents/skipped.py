"""The market inputs a consumer skipped around an assignment, read from the broker and handled.

faust-streaming 0.15's fetcher can lose records at a rebalance (streams/accounts/cursor.py says
how): a record fetched before it can be handed over after it, and every record below it that it
fetches again is dropped; the records waiting in a stream's buffer at the rebalance are cleared
and, when the fetcher had marked them read, never handed over again. A skipped listing,
settlement or parameter set would be lost for good (the commit moves past it). The account
inputs have their cursor in the portfolio table. The market agent, whose inputs are each complete
in themselves, keeps the next offset to handle of each partition since its assignment:

- a head hole: a partition's first input since the assignment is checked against the offset the
  partition resumed from (the group's committed offset, or the partition's start when nothing
  was committed yet, as at a new group's first rebalance), and the records in between are read
  from the broker (by assignment, not through Faust's fetcher) and handled in order before it;
- a tail hole: records the consumer saw arrive (its end offset moved past the next offset) but
  never handed over, for ``REPAIR_AFTER_S`` with nothing handled meanwhile, are read and handled
  the same way (``repair``), since no later input may ever come to reveal them;
- inputs handed over late, below the next offset, were handled already and are passed over.

Either way the consumer is told the offsets read are done, so that its commits move past them.
Later gaps within an assignment are the compaction's (the market topics are compacted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException

from infra.settings import Settings
from streams.agents.guard import Replayed
from streams.agents.private import add_gap, committed_offset, writing_to
from streams.kafka_io import Received, read_range

log = logging.getLogger("spma")

Handle = Callable[[Any], Awaitable[None]]
TopicPartition = tuple[str, int]

REPAIR_AFTER_S = 3.0
"""How long records may wait unhanded, with nothing of their partition handled meanwhile, before
the worker reads them itself (a busy agent reaches them sooner; a lost one never does)."""
REPAIR_MAX = 5_000
"""At most this many records of a partition are read per repair (the next pass reads on)."""


class SkippedInputs:
    """The next market input offset to handle per partition since its assignment, its holes read
    from the broker."""

    def __init__(self, settings: Settings, consumer: Callable[[], Any], handle: Handle) -> None:
        self.settings = settings
        self.consumer = consumer  # Faust's consumer (created when the app starts)
        self.handle = handle  # handles one input (an event or a Replayed record)
        self.next: dict[TopicPartition, int] = {}  # partitions with an input since assignment
        self.moved: dict[TopicPartition, tuple[int | None, float]] = {}  # next, when it moved
        self.lock = asyncio.Lock()  # the agent's inputs and a repair, one at a time

    async def on_input(self, event: Any) -> bool:
        """Handle an input handed over by the consumer, after the records skipped before it
        since the assignment; False when it was handled already (read by a repair)."""
        message = event.message
        tp = (message.topic, message.partition)
        async with self.lock:
            nxt = self.next.get(tp)
            if nxt is None:
                await self.head_hole(tp, message.offset)
            elif message.offset < nxt:
                return False
            await self.handle(event)
            self.next[tp] = message.offset + 1
        return True

    def start(self, tp: TopicPartition) -> tuple[int | None, int]:
        """Where the partition resumed at its assignment: the committed offset (None when
        nothing was committed) and the offset to read from."""
        resumed = committed_offset(self.consumer(), *tp)
        return resumed, resumed if resumed is not None else OFFSET_BEGINNING

    async def head_hole(self, tp: TopicPartition, offset: int) -> None:
        """The records between where the partition resumed and its first input."""
        resumed, start = self.start(tp)
        if offset <= (resumed or 0):
            return
        hole = await self.read(tp, start, offset)
        if hole:
            where = resumed if resumed is not None else "the start"
            log.warning(
                "%s:%s: resumed at %s, got %s first; handling %d skipped records",
                *tp,
                where,
                offset,
                len(hole),
            )
            await self.handle_all(tp, hole)

    async def repair(self, ends: Mapping[TopicPartition, int], now: float) -> None:
        """Read and handle the records of each partition (``ends``: the consumer's end offsets)
        that waited ``REPAIR_AFTER_S`` with none handled (``now``: monotonic)."""
        for tp, end in ends.items():
            nxt = self.next.get(tp)
            moved = self.moved.get(tp)
            if moved is None or moved[0] != nxt:
                self.moved[tp] = (nxt, now)
                continue
            if (nxt is not None and end <= nxt) or now - moved[1] < REPAIR_AFTER_S:
                continue
            async with self.lock:
                try:
                    await self.tail_hole(tp, end)
                except KafkaException as exc:  # the next pass tries again
                    log.warning("%s:%s: waiting records not read: %s", *tp, exc)

    async def tail_hole(self, tp: TopicPartition, end: int) -> None:
        """The records from the next offset to ``end`` (under the lock)."""
        nxt = self.next.get(tp)
        resumed, start = self.start(tp) if nxt is None else (nxt, nxt)
        if end <= (resumed or 0):  # nothing waits: the partition is done so far
            self.next[tp] = max(end, resumed or 0)
            return
        hole = (await self.read(tp, start, end))[:REPAIR_MAX]
        if not hole:  # the broker holds none of those offsets (deleted, markers)
            self.next[tp] = end
            return
        log.warning(
            "%s:%s: %d records up to %s waited unhanded; handling them", *tp, len(hole), end
        )
        await self.handle_all(tp, hole)

    async def read(self, tp: TopicPartition, start: int, end: int) -> list[Received]:
        """A partition's records from ``start`` up to ``end`` excluded, off the event loop."""
        return await asyncio.to_thread(read_range, self.settings, *tp, start, end)

    async def handle_all(self, tp: TopicPartition, records: list[Received]) -> None:
        """Handle records read from the broker in order (each one's table writes follow its
        partition: a timer has no current event); the consumer is told they are done."""
        for m in records:
            with writing_to(m.topic, m.partition):
                await self.handle(Replayed(m))
        self.next[tp] = records[-1].offset + 1
        await add_gap(self.consumer(), *tp, records[0].offset, records[-1].offset)

    def forget(self) -> None:
        """After a rebalance: every partition starts over from where it resumes."""
        self.next.clear()
        self.moved.clear()
