"""Copying the workers' table changelogs from Faust's old names to their names under the prefix.

Faust named a table's changelog ``{app_id}-{table}-changelog``, outside the topic prefix; the
workers now use ``{prefix}{app_id}-{table}-changelog`` (``Settings.changelog_topic``). A
deployment from before keeps its tables by copying each old changelog, with every worker stopped,
into a new topic of the same partition count: every record to the same partition, with its key,
value (tombstones too) and headers, in order. Offsets are not kept (a worker recovers a new
changelog from its start), and the old topics are left for the operator to delete.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # admin does not re-export it

from infra.settings import Settings
from streams.kafka_io import make_consumer, make_producer


class MigrationError(RuntimeError):
    """A changelog that cannot be copied safely (its new name already holds records)."""


@dataclass(frozen=True)
class Copied:
    """One table's changelog: where from, where to, and how many records were copied (None:
    no old changelog, nothing to do)."""

    table: str
    source: str
    target: str
    records: int | None


def _ends(settings: Settings, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's end offset (high watermark), for those that hold records."""
    consumer = make_consumer(settings, f"spma-migrate-{uuid.uuid4().hex[:8]}")
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10.0)
            for p in range(partitions)
        }
    finally:
        consumer.close()
    return {p: high for p, (low, high) in ends.items() if high > low}


def _create(admin: AdminClient, settings: Settings, topic: str, partitions: int) -> None:
    """The new changelog: compacted, with the settings' replication and changelog configs."""
    config = {"cleanup.policy": "compact", **settings.changelog_topic_config()}
    new = NewTopic(topic, partitions, settings.replication_factor, config=config)
    for future in admin.create_topics([new]).values():
        future.result(30.0)


def _copy(settings: Settings, source: str, target: str, ends: dict[int, int]) -> int:
    """Every record of the source's partitions up to their ends into the same partitions of the
    target, acknowledged; the number copied."""
    consumer = make_consumer(settings, f"spma-migrate-{uuid.uuid4().hex[:8]}")
    producer = make_producer(settings)
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            errors.append(error)

    consumer.assign([TopicPartition(source, p, 0) for p in ends])
    left, copied = dict(ends), 0
    try:
        while left:
            for m in consumer.consume(500, timeout=1.0):
                partition, offset = m.partition(), m.offset()
                if m.error() is not None or partition is None or offset is None:
                    continue
                _produce(producer, target, m, partition, delivered)
                copied += 1
                if offset + 1 >= left.get(partition, 0):
                    left.pop(partition, None)
    finally:
        consumer.close()
    if producer.flush(60.0) or errors:
        raise KafkaException(errors[0] if errors else "records not acknowledged within 60 s")
    return copied


def _produce(
    producer: Producer,
    topic: str,
    m: Message,
    partition: int,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    """One record to the same partition of the target, waiting for room in the queue."""
    while True:
        try:
            producer.produce(
                topic,
                value=m.value(),
                key=m.key(),
                partition=partition,
                on_delivery=on_delivery,
                headers=m.headers() or [],
            )
            return
        except BufferError:
            producer.poll(0.05)


def migrate(settings: Settings, tables: Iterable[str]) -> list[Copied]:
    """Copy each table's changelog from its old name to its new one (MigrationError, before
    anything is copied, when a new one already holds records)."""
    old = settings.model_copy(update={"legacy_changelog_names": True})
    admin = AdminClient(settings.kafka_client_config())
    topics = admin.list_topics(timeout=15.0).topics
    plan = [(t, old.changelog_topic(t), settings.changelog_topic(t)) for t in tables]
    for _, source, target in plan:
        if source not in topics or target not in topics:
            continue
        have, want = len(topics[target].partitions), len(topics[source].partitions)
        if have != want:
            raise MigrationError(f"{target} has {have} partitions, {source} {want}: delete it")
        if _ends(settings, target, have):
            raise MigrationError(f"{target} already holds records: nothing was copied")
    done = []
    for table, source, target in plan:
        if source not in topics:
            done.append(Copied(table, source, target, None))
            continue
        partitions = len(topics[source].partitions)
        if target not in topics:
            _create(admin, settings, target, partitions)
        count = _copy(settings, source, target, _ends(settings, source, partitions))
        done.append(Copied(table, source, target, count))
    return done
