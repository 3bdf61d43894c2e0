"""The market inputs a consumer skipped at an assignment, read from the broker and handled first.

faust-streaming 0.15's fetcher can hand over, after a rebalance, a record it fetched before it,
and then drops every record below it that it fetches again (streams/accounts/cursor.py says how):
the partition's first input after the assignment is then past the offset the group was committed
at. A skipped listing, settlement or parameter set would be lost for good (the commit moves past
it). The account inputs have their cursor in the portfolio table; the market agent, whose inputs
are each complete in themselves, checks each partition's first input since the assignment
against the committed offset it resumed from, reads the records in between from the broker (by
assignment, not through Faust's fetcher) and handles them in order before it, then tells the
consumer they are done. Later gaps within an assignment are the compaction's (the market topics
are compacted), not skips.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from infra.settings import Settings
from streams.agents.guard import Replayed
from streams.agents.private import add_gap, committed_offset
from streams.kafka_io import read_range

log = logging.getLogger("spma")

Handle = Callable[[Any], Awaitable[None]]


class SkippedInputs:
    """Each partition's first input since its assignment checked for records skipped before it."""

    def __init__(self, settings: Settings, consumer: Callable[[], Any]) -> None:
        self.settings = settings
        self.consumer = consumer  # Faust's consumer (created when the app starts)
        self.started: set[tuple[str, int]] = set()  # partitions with an input since assignment

    async def before(self, message: Any, handle: Handle) -> None:
        """Handle (``handle``) the records of the message's partition the consumer skipped
        between the offset it resumed from and this message, the first of its partition since
        the assignment."""
        topic, partition, offset = message.topic, message.partition, message.offset
        if (topic, partition) in self.started:
            return
        self.started.add((topic, partition))
        consumer = self.consumer()
        resumed = committed_offset(consumer, topic, partition)
        if resumed is None or offset <= resumed:
            return
        log.warning(
            "%s:%s: resumed at %s, got %s first; reading the skipped records",
            topic,
            partition,
            resumed,
            offset,
        )
        hole = await asyncio.to_thread(read_range, self.settings, topic, partition, resumed, offset)
        for m in hole:
            await handle(Replayed(m))
        await add_gap(consumer, topic, partition, resumed, offset - 1)

    def forget(self) -> None:
        """After a rebalance: every partition's first input is checked again."""
        self.started.clear()
