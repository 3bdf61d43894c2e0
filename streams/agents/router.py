"""The router of a generation g >= 1: every keyed account input (fills, collateral) forwarded to
the generation's internal copy of its topic, on the account's partition there, its upstream
coordinates in a header (streams/scaling/origin.py).

It keeps no state: the consumer group's offsets on the input topics say where it is. An account's
records sit in one input partition and are forwarded in order by one agent, so they reach their
internal partition in order; a copy forwarded again after a crash or a rebalance is skipped by the
account agent. The exchange's producers keep writing the input topics as they always did.

Continuity. Faust's fetcher can hand over a partition's records with a hole after a rebalance
(streams/accounts/cursor.py says how); forwarded as they come, the hole's records would never
reach their accounts. So the router expects each input partition's next offset (from the group's
committed offset at the assignment on) and, handed a record past it, reads the hole from the
broker itself and forwards it first, then tells the consumer the hole is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from infra.settings import Settings
from streams.agents.metrics import WorkerMetrics
from streams.agents.private import add_gap, committed_offset
from streams.kafka_io import read_range
from streams.scaling.layout import account_partition
from streams.scaling.origin import Origin

log = logging.getLogger("spma")


class Router:
    """Re-keys a worker's share of the keyed input topics into its generation's topics."""

    def __init__(self, settings: Settings, app: Any, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.app = app
        self.metrics = metrics
        self.next: dict[tuple[str, int], int] = {}  # input partition -> next offset to forward

    async def on_event(self, event: Any) -> None:
        """Forward an input record, after the hole before it if the consumer skipped one."""
        msg = event.message
        tp = (msg.topic, msg.partition)
        want = self.next.get(tp)
        if want is None:  # first record since the assignment: where consumption resumed
            want = committed_offset(self.app.consumer, *tp) or 0
        if msg.offset > want:
            await self.fill_hole(msg.topic, msg.partition, want, msg.offset)
        await self.forward(msg.topic, msg.partition, msg.offset, msg.key, msg.value)
        self.next[tp] = max(want, msg.offset + 1)

    async def fill_hole(self, topic: str, partition: int, start: int, end: int) -> None:
        """Read offsets start to end (excluded) from the broker and forward them in order."""
        log.warning("%s:%s: got %s, routing %s to %s again", topic, partition, end, start, end)
        hole = await asyncio.to_thread(read_range, self.settings, topic, partition, start, end)
        for m in hole:
            await self.forward(topic, partition, m.offset, m.key, m.value)
        await add_gap(self.app.consumer, topic, partition, start, end - 1)

    async def forward(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        """Forward one input record, bytes untouched (decoding is the account agent's)."""
        logical = self.settings.logical_topic(topic)
        target = self.settings.account_topic(logical)
        to = account_partition(key, self.settings.layout_partitions)
        header = Origin(topic, partition, offset).header()
        await self.app.producer.send(target, key, value, to, None, [header])
        self.metrics.routed.labels(logical).inc()

    def forget(self, partitions: Iterable[Any]) -> None:
        """Partitions assigned or revoked: their next offset is read again at the next record."""
        for tp in partitions:
            self.next.pop((tp.topic, tp.partition), None)
