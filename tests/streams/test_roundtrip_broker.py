"""Every schema (each record type at each version) produced and consumed through the session's
broker with plain confluent-kafka clients: each record decodes equal to what was sent."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from infra.settings import Settings
from schemas import SCHEMAS_DIR
from streams.codec import AvroCodec, FolderRegistry
from streams.records import Record
from streams.topics.admin import create_topics
from streams.topics.catalog import CATALOG
from tests.streams.samples import ALL_SAMPLES
from tests.streams.schema_projection import project

pytestmark = pytest.mark.broker

DEADLINE_S = 30.0
QUIET_S = 1.5


def _every_schema(registry: FolderRegistry) -> list[tuple[str, str, int, Record]]:
    """(topic, record stem, version, sample) for every schema file."""
    stem_of = {kind.model: kind.record for entry in CATALOG.values() for kind in entry.types()}
    found: list[tuple[str, str, int, Record]] = []
    for topic, record in ALL_SAMPLES:
        stem = stem_of[type(record)]
        if any(s == stem for _, s, _, _ in found):
            continue  # one sample per record type (the MARK broadcast is a second sample)
        for version in sorted(registry.records()[stem]):
            found.append((topic, stem, version, record))
    return found


def test_every_schema_round_trips_through_the_broker(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    """Each schema version's sample goes through the broker once and decodes equal."""
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=2)
    create_topics(settings, timeout_s=30)
    registry = FolderRegistry(SCHEMAS_DIR)
    reader = AvroCodec(registry)
    cases = _every_schema(registry)
    assert {stem for _, stem, _, _ in cases} == set(registry.records())

    producer = Producer({**settings.kafka_client_config(), "linger.ms": 5, "log_level": 3})
    expected: dict[bytes, tuple[str, Record]] = {}
    for topic, stem, version, record in cases:
        writer = AvroCodec(registry, versions={stem: version})
        key = f"{stem}.v{version}".encode()
        seen = project(record.model_dump(), registry.version(stem, version).schema)
        expected[key] = (topic, type(record).model_validate(seen))
        producer.produce(settings.topic(topic), key=key, value=writer.encode(topic, record))
    assert producer.flush(DEADLINE_S) == 0, "every record acknowledged"

    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": f"roundtrip-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "log_level": 3,
        }
    )
    consumer.subscribe(sorted({settings.topic(t) for t, _, _, _ in cases}))
    got: dict[bytes, list[tuple[str, bytes]]] = {}
    deadline = time.monotonic() + DEADLINE_S
    last_new = time.monotonic()
    try:
        # Read until everything came and then nothing new for a while (Tansu 0.6 may under-report
        # the high watermark, so the end is "quiet", never "offset == watermark").
        while time.monotonic() < deadline:
            fresh = [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
            for message in fresh:
                m_key, m_value, m_topic = message.key(), message.value(), message.topic()
                assert m_key is not None and m_value is not None and m_topic is not None
                got.setdefault(m_key, []).append((m_topic, m_value))
            now = time.monotonic()
            if fresh:
                last_new = now
            elif len(got) >= len(expected) and now - last_new > QUIET_S:
                break
    finally:
        consumer.close()

    assert set(got) == set(expected), f"missing {sorted(set(expected) - set(got))}"
    for key, received in got.items():
        topic, record = expected[key]
        assert len(received) == 1, f"{key!r} arrived {len(received)} times"
        full_topic, value = received[0]
        assert full_topic == settings.topic(topic)
        assert reader.decode(topic, value) == record, key
