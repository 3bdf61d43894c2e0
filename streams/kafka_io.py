"""Plain confluent-kafka producing and draining with the codec (tools, demo and tests).

Draining reads until no new record arrives for a quiet period (Tansu 0.6 can under-report the
high watermark when producers batch), always within a hard deadline.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from infra.settings import KafkaConfig, Settings
from streams.codec import AvroCodec
from streams.records import Record


@dataclass(frozen=True)
class Received:
    """A consumed record: where it came from, its key and its raw value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Any, ...] = ()  # (name, value) pairs: a routed input's origin (streams/scaling/)


def received(message: Message) -> Received:
    """A consumed, error-free message as a Received (librdkafka sets the position of each)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise KafkaException(f"a consumed message has no position: {message.error()}")
    return Received(topic, partition, offset, message.key(), message.value())


LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
"""Where librdkafka's own log lines go (served by the clients' poll and consume calls), so that
the worker's logging formats them and sums up their repeats (streams/agents/logs.py), instead of
librdkafka writing to stderr itself (a line every 50 ms while the broker is gone)."""


def make_producer(settings: Settings, **extra: str | int) -> Producer:
    """A producer for the configured broker (idempotent where the broker supports it)."""
    conf: KafkaConfig = {**settings.kafka_client_config(), "linger.ms": 5, "log_level": 3}
    conf.update(extra)
    return Producer(conf, logger=LIBRDKAFKA_LOG)


def make_consumer(
    settings: Settings, group: str, extra: Mapping[str, str | int | bool] | None = None
) -> Consumer:
    """A consumer of the configured broker in a group, from the earliest offset and committing
    nothing unless ``extra`` (more librdkafka settings) says otherwise."""
    conf: KafkaConfig = {
        **settings.kafka_client_config(),
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "log_level": 3,
    }
    conf.update(extra or {})
    return Consumer(conf, logger=LIBRDKAFKA_LOG)


def produce(
    producer: Producer,
    codec: AvroCodec,
    settings: Settings,
    topic: str,
    key: str,
    value: Record,
) -> None:
    """Encode and send one record to a logical topic, keyed by a string."""
    produce_raw(producer, settings.topic(topic), key.encode(), codec.encode(topic, value))


def produce_raw(
    producer: Producer, topic: str, key: bytes | None, value: bytes | None, partition: int = -1
) -> None:
    """Send one record of bytes to a full topic name (partition -1: the partitioner's), waiting
    for room in the producer's queue."""
    while True:
        try:
            producer.produce(topic, value=value, key=key, partition=partition)
            return
        except BufferError:
            producer.poll(0.05)


def flush(producer: Producer, timeout_s: float = 30.0) -> None:
    """Wait until every produced record is acknowledged, or fail."""
    left = producer.flush(timeout_s)
    if left:
        raise KafkaException(f"{left} records not acknowledged within {timeout_s} s")


def drain(
    settings: Settings,
    topics: Iterable[str],
    *,
    timeout_s: float = 60.0,
    quiet_s: float = 3.0,
    expect: int | None = None,
    group: str | None = None,
) -> list[Received]:
    """Every record of some logical topics from the start, until quiet (or `expect` seen)."""
    consumer = make_consumer(
        settings,
        group or f"spma-drain-{uuid.uuid4().hex[:8]}",
        {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    consumer.subscribe([settings.topic(t) for t in topics])
    got: list[Received] = []
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if expect is not None and len(got) >= expect:
                break
            msgs = consumer.consume(500, timeout=0.5)
            fresh = [m for m in msgs if m.error() is None]
            if fresh:
                last_new = time.monotonic()
                got += [received(m) for m in fresh]
            elif got and time.monotonic() - last_new > quiet_s and expect is None:
                break
    finally:
        consumer.close()
    return got


def group_lag(
    settings: Settings, group: str, topics: Iterable[str], timeout_s: float = 10.0
) -> int:
    """Records of some logical topics a consumer group has yet to commit (0: caught up).

    Reads the group's committed offsets without joining it, and each partition's high watermark.
    On Tansu the watermark can lag the real end briefly, so callers pair this with a quiet period.
    """
    consumer = Consumer({**settings.kafka_client_config(), "group.id": group, "log_level": 3})
    try:
        names = [settings.topic(t) for t in topics]
        meta = consumer.list_topics(timeout=timeout_s)
        parts = [TopicPartition(name, p) for name in names for p in meta.topics[name].partitions]
        committed = consumer.committed(parts, timeout=timeout_s)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=timeout_s
            )
            done = tp.offset if tp.offset >= 0 else low
            lag += max(0, high - done)
        return lag
    finally:
        consumer.close()


def read_range(
    settings: Settings, topic: str, partition: int, start: int, end: int, timeout_s: float = 60.0
) -> list[Received]:
    """The records of a partition (a full topic name) from offset ``start`` up to ``end``
    excluded, ``end`` at most the partition's end offset: reading stops on a record at ``end``
    or beyond, or when the consumer's position reaches ``end`` (the last offsets may be
    transaction markers), so offsets the broker does not hold (deleted, markers) are simply
    absent. By assignment, no consumer group join; KafkaException if the end is not reached in
    time."""
    consumer = make_consumer(settings, f"spma-range-{uuid.uuid4().hex[:8]}")
    tp = TopicPartition(topic, partition, start)
    found: list[Received] = []
    deadline = time.monotonic() + timeout_s
    try:
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
        if max(start, low) >= min(end, high):  # nothing held there (start may be a logical one)
            return found
        consumer.assign([tp])
        while time.monotonic() < deadline:
            for m in consumer.consume(500, timeout=0.5):
                if m.error() is not None:
                    continue
                offset = int(m.offset() or 0)
                if offset >= end:
                    return found
                headers = tuple(m.headers() or ())
                found.append(Received(topic, partition, offset, m.key(), m.value(), headers))
            if consumer.position([tp])[0].offset >= end:
                return found
    finally:
        consumer.close()
    raise KafkaException(f"{topic}:{partition}: offsets {start} to {end} not read in {timeout_s} s")


def read_tails(
    settings: Settings,
    topic: str,
    partitions: Iterable[int],
    last: int | None = None,
    quiet_s: float = 0.3,
    timeout_s: float = 30.0,
) -> list[Received]:
    """Some partitions' records (a full topic name): each one's ``last`` records before the end
    the broker reports (all when None), and on past those ends until nothing new comes for
    ``quiet_s``: a broker may report an end short of what it acknowledged (Tansu does), so the
    reported end alone is not trusted. One consumer by assignment, no group join;
    KafkaException if it never goes quiet."""
    consumer = make_consumer(settings, f"spma-tail-{uuid.uuid4().hex[:8]}")
    try:
        ends: dict[int, int] = {}
        starts = []
        for partition in sorted(set(partitions)):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10.0)
            start = low if last is None else max(low, high - last)
            if start < high:
                ends[partition] = high
            starts.append(TopicPartition(topic, partition, start))
        consumer.assign(starts)
        found: list[Received] = []
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            fresh = [m for m in consumer.consume(500, timeout=0.1) if m.error() is None]
            for m in fresh:
                found.append(received(m))
                if found[-1].offset + 1 >= ends.get(found[-1].partition, 0):
                    ends.pop(found[-1].partition, None)
            if fresh:
                quiet_since = time.monotonic()
            elif not ends and time.monotonic() - quiet_since >= quiet_s:
                return found
    finally:
        consumer.close()
    raise KafkaException(f"{topic}: partitions not read to quiet within {timeout_s} s")


class TopicFollower:
    """A whole topic read from its start, every partition by assignment (no group), and on each
    ``read_new`` on to the ends the broker reports then: a view kept of a topic that no agent of
    this worker reads in full (the market agent's listings)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic  # the full topic name
        self.consumer: Consumer | None = None
        self.positions: dict[int, int] = {}  # the next offset to read of each partition

    def bounds(self, consumer: Consumer, timeout_s: float) -> dict[int, tuple[int, int]]:
        """Each partition's first offset held and end (watermarks) as the broker reports them."""
        meta = consumer.list_topics(self.topic, timeout=timeout_s).topics[self.topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout_s)
            for p in meta.partitions
        }

    def settled_bounds(self, consumer: Consumer, deadline: float) -> dict[int, tuple[int, int]]:
        """``bounds``, asked again while the broker answers with an error (a partition without a
        leader yet, as just after the topic's creation) until the deadline."""
        while True:
            try:
                return self.bounds(consumer, max(0.5, deadline - time.monotonic()))
            except KafkaException:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def read_new(self, timeout_s: float = 10.0) -> list[Received]:
        """The records added since the last call (all of them the first time), up to the ends
        the broker reports now; nothing is read when no end moved. KafkaException if the ends
        are not reached in time."""
        if self.consumer is None:
            group = f"spma-follow-{uuid.uuid4().hex[:8]}"  # short fetches: a long-polling one
            self.consumer = make_consumer(self.settings, group, {"fetch.wait.max.ms": 20})
            # would hold the next call's watermark queries behind it on the connection
        consumer = self.consumer
        deadline = time.monotonic() + timeout_s
        starts: dict[int, int] = {}
        behind: dict[int, int] = {}
        for p, (low, high) in self.settled_bounds(consumer, deadline).items():
            starts[p] = max(low, self.positions.get(p, 0))
            if starts[p] < high:
                behind[p] = high
        if not behind:
            return []
        consumer.assign([TopicPartition(self.topic, p, starts[p]) for p in behind])
        found: list[Received] = []
        while behind and time.monotonic() < deadline:
            for m in consumer.consume(500, timeout=0.1):
                if m.error() is None:
                    found.append(received(m))
            for tp in consumer.position([TopicPartition(self.topic, p) for p in list(behind)]):
                if tp.offset >= 0:
                    self.positions[tp.partition] = tp.offset
                if tp.offset >= behind[tp.partition]:
                    del behind[tp.partition]
        consumer.unassign()  # no fetch left waiting before the next call's watermark queries
        if behind:
            raise KafkaException(f"{self.topic}: partitions {sorted(behind)} not read to their end")
        return found

    def close(self) -> None:
        """Leave the broker."""
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
