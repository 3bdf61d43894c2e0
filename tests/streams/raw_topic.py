"""A topic of raw records written for a test, outside the catalogue (a changelog, an input)."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from infra.settings import Settings
from streams.kafka_io import flush, make_producer

Write = tuple[int, bytes | None, bytes | None]
"""(partition, key, value) of one record."""


def write_topic(settings: Settings, name: str, partitions: int, writes: list[Write]) -> None:
    """Create the topic (a full name) and write the records in order, acknowledged."""
    admin = AdminClient(settings.kafka_client_config())
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)
    producer = make_producer(settings)
    for partition, key, value in writes:
        producer.produce(name, key=key, value=value, partition=partition)
    flush(producer)
