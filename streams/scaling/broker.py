"""What a scale asks of the broker: a generation's topics created, the consumer group's members
and committed offsets, partitions' ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from confluent_kafka import ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from infra.settings import Settings
from streams.kafka_io import make_consumer, make_producer
from streams.scaling.errors import ScaleError
from streams.scaling.layout import OwnTopic

Offsets = dict[tuple[str, int], int]


def producer(settings: Settings, **extra: str | int) -> Producer:
    """A producer of a scale's records: idempotent where the settings say the broker allows it
    (a retried send never doubles nor reorders a record)."""
    idempotent = "true" if settings.producer_idempotence else "false"
    return make_producer(settings, **{"enable.idempotence": idempotent, **extra})


def create_owned(settings: Settings, topics: Iterable[OwnTopic], timeout_s: float = 30.0) -> None:
    """Create a generation's topics that are missing; one that exists with another partition
    count is an error (a name taken by something else)."""
    admin = AdminClient(settings.kafka_client_config())
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = []
    for t in topics:
        have = existing.get(t.name)
        if have is not None and len(have.partitions) != t.partitions:
            raise ScaleError(
                f"{t.name} exists with {len(have.partitions)} partitions, not {t.partitions}"
            )
        if have is None:
            wanted.append(
                NewTopic(
                    t.name, t.partitions, settings.replication_factor, config=_config(settings, t)
                )
            )
    if not wanted:
        return
    for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ScaleError(f"cannot create {name}: {exc}") from exc


def _config(settings: Settings, topic: OwnTopic) -> dict[str, str]:
    """A created topic's configuration (a changelog's as the workers make theirs)."""
    if topic.compacted:
        return {"cleanup.policy": "compact", **settings.changelog_topic_config()}
    config = {"cleanup.policy": "delete"}
    if settings.min_insync_replicas is not None:
        config["min.insync.replicas"] = str(settings.min_insync_replicas)
    return config


def group_members(settings: Settings, timeout_s: float = 15.0) -> int:
    """Members of the workers' consumer group now (0: empty or unknown to the broker)."""
    admin = AdminClient(settings.kafka_client_config())
    future = admin.describe_consumer_groups([settings.app_id], request_timeout=timeout_s)
    group = future[settings.app_id].result(timeout=timeout_s)
    if group.state in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD):
        return 0
    return len(group.members)


def ends(settings: Settings, topics: Iterable[str], timeout_s: float = 15.0) -> Offsets:
    """The end offset of every partition of some topics (full names)."""
    consumer = make_consumer(settings, f"spma-scale-{uuid.uuid4().hex[:8]}")
    try:
        meta = consumer.list_topics(timeout=timeout_s).topics
        found = {}
        for name in topics:
            for p in meta[name].partitions:
                found[name, p] = consumer.get_watermark_offsets(TopicPartition(name, p), timeout_s)[
                    1
                ]
        return found
    finally:
        consumer.close()


def committed(
    settings: Settings, partitions: Iterable[tuple[str, int]], timeout_s: float = 15.0
) -> Offsets:
    """The workers' group's committed offset of some partitions (0 where none)."""
    consumer = make_consumer(settings, settings.app_id)  # asks, never joins nor commits
    try:
        tps = [TopicPartition(t, p) for t, p in partitions]
        got = consumer.committed(tps, timeout=timeout_s)
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in got}
    finally:
        consumer.close()
