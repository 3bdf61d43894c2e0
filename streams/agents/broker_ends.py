"""The end offsets the broker reports for input partitions whose end this worker's consumer has
not seen (it never fetched them since its assignment): without them such a partition shows no
lag and never a stall, however many records wait in it (a partition Faust left unfetched after
a rebalance hung a worker silently in CI)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from infra.settings import Settings
from streams.kafka_io import make_consumer

log = logging.getLogger("spma")

TIMEOUT_S = 2.0
"""Longest wait for one partition's end (a slow broker only delays the next lag reading)."""


class BrokerEnds:
    """Asks the broker for partitions' end offsets, on one consumer kept for it (no group)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consumer: Consumer | None = None
        self.lock = threading.Lock()  # one call at a time (it runs in a thread)

    def ends(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Each partition's end offset (high watermark), as the broker reports it now; a
        partition it does not answer for is left out. Blocking: call it in a thread."""
        found: dict[tuple[str, int], int] = {}
        with self.lock:
            if self.consumer is None:
                self.consumer = make_consumer(self.settings, f"spma-ends-{uuid.uuid4().hex[:8]}")
            for topic, partition in partitions:
                tp = TopicPartition(topic, partition)
                try:
                    _, high = self.consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S)
                except KafkaException as exc:
                    log.debug("%s:%s: no end offset from the broker: %s", topic, partition, exc)
                    continue
                if high >= 0:
                    found[topic, partition] = high
        return found

    def close(self) -> None:
        """Close the consumer (the worker stops)."""
        with self.lock:
            if self.consumer is not None:
                self.consumer.close()
                self.consumer = None
