"""The topics' idempotent creation on a broker, with the catalogue's partitions and policies.

Account-keyed topics (fills, collateral, outputs keyed by account, the market broadcast) share the
configured partition count so that they are co-partitioned. Single-owner topics (insurance claims
and fund events, risk parameters) have one partition so that one worker sees them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewPartitions, NewTopic  # admin does not re-export them

from infra.settings import Settings
from streams.topics.catalog import TOPICS, TopicSpec


@dataclass(frozen=True)
class TopicResult:
    """What creation did for one topic."""

    topic: str
    partitions: int
    outcome: str  # created | exists | exists-with-N-partitions


def _new_topic(spec: TopicSpec, settings: Settings) -> NewTopic:
    """The admin request for one topic."""
    return NewTopic(
        settings.topic(spec.name),
        num_partitions=spec.partitions(settings.partitions),
        replication_factor=settings.replication_factor,
        config=_topic_config(spec, settings),
    )


def _topic_config(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    """A created topic's configuration: its cleanup policy and, when set, the min ISR."""
    config = {"cleanup.policy": str(spec.cleanup)}
    if settings.min_insync_replicas is not None:
        config["min.insync.replicas"] = str(settings.min_insync_replicas)
    return config


def create_topics(
    settings: Settings, *, timeout_s: float = 30.0, specs: tuple[TopicSpec, ...] = TOPICS
) -> list[TopicResult]:
    """Create every topic that is missing (idempotent) and report what each one has."""
    admin = AdminClient(settings.kafka_client_config())
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = [s for s in specs if settings.topic(s.name) not in existing]
    if wanted:
        futures = admin.create_topics(
            [_new_topic(s, settings) for s in wanted], operation_timeout=timeout_s
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout_s)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise RuntimeError(f"cannot create topic {name}: {exc}") from exc
    return describe_topics(settings, admin=admin, timeout_s=timeout_s, specs=specs, created=wanted)


def describe_topics(
    settings: Settings,
    *,
    admin: AdminClient | None = None,
    timeout_s: float = 30.0,
    specs: tuple[TopicSpec, ...] = TOPICS,
    created: list[TopicSpec] | None = None,
) -> list[TopicResult]:
    """The partition count each topic has on the broker, against what the settings want."""
    admin = admin or AdminClient(settings.kafka_client_config())
    topics = admin.list_topics(timeout=timeout_s).topics
    created_names = {settings.topic(s.name) for s in created or []}
    results = []
    for spec in specs:
        name = settings.topic(spec.name)
        meta = topics.get(name)
        have = len(meta.partitions) if meta is not None else 0
        if name in created_names:
            outcome = "created"
        elif meta is None:
            outcome = "missing"
        elif have == spec.partitions(settings.partitions):
            outcome = "exists"
        else:
            outcome = f"exists-with-{have}-partitions"
        results.append(TopicResult(name, have, outcome))
    return results


def existing_topics(settings: Settings, *, timeout_s: float = 15.0) -> set[str]:
    """The names of every topic on the broker."""
    admin = AdminClient(settings.kafka_client_config())
    return set(admin.list_topics(timeout=timeout_s).topics)


def grow_partitions(settings: Settings, *, timeout_s: float = 30.0) -> list[str]:
    """Raise the partition count of account-keyed topics to the configured one (never lowers)."""
    admin = AdminClient(settings.kafka_client_config())
    topics = admin.list_topics(timeout=timeout_s).topics
    grow = [
        NewPartitions(settings.topic(s.name), settings.partitions)
        for s in TOPICS
        if not s.single_partition
        and settings.topic(s.name) in topics
        and len(topics[settings.topic(s.name)].partitions) < settings.partitions
    ]
    if not grow:
        return []
    for future in admin.create_partitions(grow, operation_timeout=timeout_s).values():
        future.result(timeout=timeout_s)
    return [p.topic for p in grow]
