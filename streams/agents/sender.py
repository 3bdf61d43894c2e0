"""Sending: outputs encoded and handed to the worker's producer, each on the partition its topic
wants, counted by topic."""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any

import faust

from infra.settings import Settings
from streams.accounts.outbox import Encoded
from streams.accounts.outputs import Output
from streams.agents.metrics import WorkerMetrics
from streams.codec import AvroCodec
from streams.topics.catalog import ACCOUNT_KEYED

log = logging.getLogger("spma")


class Sender:
    """Encodes outputs and hands them to the producer, in order."""

    def __init__(
        self, settings: Settings, app: faust.App, codec: AvroCodec, metrics: WorkerMetrics
    ) -> None:
        self.settings = settings
        self.app = app
        self.codec = codec
        self.metrics = metrics

    def encoded(self, out: Output) -> Encoded:
        """An output ready to send."""
        return Encoded(out.topic, out.key, self.codec.encode(out.topic, out.record))

    async def after_table_writes(self) -> None:
        """Wait until every table write made so far is acknowledged (the producer flushed), so
        that outputs handed over next never outrun the state they were computed from: a crash
        then either loses both (the input is computed again, for the first time as far as
        anyone saw) or keeps the state with its outbox (a replay sends the stored bytes)."""
        flushing = asyncio.ensure_future(self.app.producer.flush())
        waited, said = 0.0, 0.0
        while True:
            done, _ = await asyncio.wait({flushing}, timeout=5.0)
            if done:
                return flushing.result()
            waited += 5.0
            if waited - said >= (5.0 if not said else 60.0):  # at 5 s, then once a minute
                said = waited
                log.warning(
                    "table writes not acknowledged after %.0f s (the producer's flush)", waited
                )

    async def send(self, outputs: list[Output]) -> list[Any]:
        """Encode and send outputs; their delivery futures."""
        return await self.hand_over([self.encoded(o) for o in outputs])

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
