"""What the broker has for each catalogue topic, against what the settings want.

For `spma topics describe`: each topic's partitions, replication factor and configuration as the
broker reports them (AdminClient.describe_configs), and where they differ from the catalogue and
the settings (partitions, replication factor, cleanup policy, and the min ISR when it is set).
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # admin does not re-export it for mypy

from infra.settings import Settings
from streams.topics.catalog import TOPICS, TopicSpec

SHOWN_CONFIGS = ("cleanup.policy", "retention.ms", "min.insync.replicas", "segment.bytes")
"""The configuration entries printed for every topic (other entries only when not defaults)."""


@dataclass(frozen=True)
class TopicState:
    """One catalogue topic on the broker (partitions 0: missing) and how it differs from what
    the settings want (empty: it matches)."""

    topic: str
    partitions: int
    replication: int
    configs: dict[str, str]
    mismatches: tuple[str, ...]


def wanted(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    """What the settings want of a topic: partitions, replication, cleanup policy, min ISR."""
    want = {
        "partitions": str(spec.partitions(settings.partitions)),
        "replication": str(settings.replication_factor),
        "cleanup.policy": str(spec.cleanup),
    }
    if settings.min_insync_replicas is not None:
        want["min.insync.replicas"] = str(settings.min_insync_replicas)
    return want


def mismatches(spec: TopicSpec, settings: Settings, have: dict[str, str]) -> tuple[str, ...]:
    """Each wanted property the broker's topic lacks, as 'name: have X, want Y'."""
    return tuple(
        f"{key}: have {have.get(key, 'none')}, want {value}"
        for key, value in wanted(spec, settings).items()
        if have.get(key) != value
    )


def topic_configs(
    admin: AdminClient, names: list[str], timeout_s: float
) -> dict[str, dict[str, str]]:
    """The configuration the broker reports for each topic: the shown entries and every entry
    that is not a default."""
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    found: dict[str, dict[str, str]] = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout_s).items():
        entries = future.result(timeout=timeout_s)
        found[resource.name] = {
            key: str(entry.value)
            for key, entry in sorted(entries.items())
            if key in SHOWN_CONFIGS or not entry.is_default
        }
    return found


def describe(settings: Settings, timeout_s: float = 15.0) -> list[TopicState]:
    """Every catalogue topic as the broker has it, in catalogue order, with its mismatches."""
    admin = AdminClient(settings.kafka_client_config())
    topics = admin.list_topics(timeout=timeout_s).topics
    present = [settings.topic(s.name) for s in TOPICS if settings.topic(s.name) in topics]
    configs = topic_configs(admin, present, timeout_s) if present else {}
    states = []
    for spec in TOPICS:
        name = settings.topic(spec.name)
        meta = topics.get(name)
        if meta is None:
            states.append(TopicState(name, 0, 0, {}, ("missing",)))
            continue
        replication = min((len(p.replicas) for p in meta.partitions.values()), default=0)
        have = {
            **configs.get(name, {}),
            "partitions": str(len(meta.partitions)),
            "replication": str(replication),
        }
        found = mismatches(spec, settings, have)
        states.append(TopicState(name, len(meta.partitions), replication, configs[name], found))
    return states
