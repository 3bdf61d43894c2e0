"""The portfolio changelogs of two generations on the broker: the old one read whole, the new
one written, and the outputs the old outboxes still held sent again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import orjson
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from infra.settings import Settings
from streams.accounts.outbox import Encoded
from streams.kafka_io import flush, make_consumer, produce_raw
from streams.scaling import broker
from streams.scaling.errors import ScaleError
from streams.scaling.layout import account_partition
from streams.topics.catalog import ACCOUNT_KEYED


def changelog_size(settings: Settings, timeout_s: float = 15.0) -> int:
    """Records in a generation's portfolio changelog (before compaction: an upper bound; 0 when
    no worker made it yet)."""
    consumer = make_consumer(settings, f"spma-scale-{uuid.uuid4().hex[:8]}")
    name = settings.portfolios_changelog()
    try:
        meta = consumer.list_topics(timeout=timeout_s).topics.get(name)
        total = 0
        for p in meta.partitions if meta is not None else ():
            low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout_s)
            total += max(0, high - low)
        return total
    finally:
        consumer.close()


def read_table(settings: Settings, timeout_s: float = 300.0) -> dict[str, bytes]:
    """A generation's portfolio table as its changelog leaves it (latest value per key, deleted
    keys left out), every partition read to the end the broker reports."""
    name = settings.portfolios_changelog()
    consumer = make_consumer(settings, f"spma-scale-{uuid.uuid4().hex[:8]}")
    table: dict[str, bytes] = {}
    try:
        meta = consumer.list_topics(timeout=15.0).topics.get(name)
        parts = meta.partitions if meta is not None else ()  # none: no worker made it yet
        ends = {p: consumer.get_watermark_offsets(TopicPartition(name, p), 15.0)[1] for p in parts}
        left = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in left])
        deadline = time.monotonic() + timeout_s
        while left:
            if time.monotonic() > deadline:
                raise ScaleError(f"{name}: not read to its end in {timeout_s} s")
            for m in consumer.consume(5000, timeout=0.5):
                raw, value, partition = m.key(), m.value(), m.partition() or 0
                if m.error() is not None or raw is None:
                    continue
                key = orjson.loads(raw)
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
                if (m.offset() or 0) + 1 >= ends[partition]:
                    left.discard(partition)
    finally:
        consumer.close()
    return table


def write_table(settings: Settings, writes: Iterable[tuple[int, str, bytes]]) -> int:
    """Write (partition, key, value) records into a generation's portfolio changelog, keys
    serialised as the workers' tables do (JSON); how many."""
    producer = broker.producer(settings, **{"linger.ms": 20})
    name = settings.portfolios_changelog()
    count = 0
    for partition, key, value in writes:
        produce_raw(producer, name, orjson.dumps(key), value, partition)
        count += 1
    flush(producer, 300.0)
    return count


def resend(settings: Settings, outputs: Iterable[Encoded]) -> int:
    """Send outputs again where the workers send them: an account input topic on librdkafka's
    partition of the key (as Sender does), any other on the Java partitioner's (murmur2, as
    Faust's producer does), so a compacted topic keeps one latest record per key."""
    producer = broker.producer(settings, partitioner="murmur2_random")
    count = 0
    for out in outputs:
        topic = settings.topic(out.topic)
        key = out.key.encode()
        keyed = out.topic in ACCOUNT_KEYED
        partition = account_partition(key, settings.partitions) if keyed else -1
        produce_raw(producer, topic, key, out.value, partition)
        count += 1
    flush(producer, 120.0)
    return count
