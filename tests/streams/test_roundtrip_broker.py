"""Every schema produced and consumed through the session's broker: the round trip is equal."""

from __future__ import annotations

import pytest

from infra.settings import Settings
from infra.topics import create_topics
from streams.codec import codec_from_settings
from streams.kafka_io import drain, flush, make_producer, produce
from tests.streams.samples import SAMPLES

pytestmark = pytest.mark.broker


def test_every_record_round_trips_through_the_broker(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=2)
    create_topics(settings, timeout_s=30)
    codec = codec_from_settings(settings)
    producer = make_producer(settings)
    for topic, record in SAMPLES.items():
        produce(producer, codec, settings, topic, "key-1", record)
    flush(producer)
    got = drain(settings, SAMPLES, timeout_s=60, expect=len(SAMPLES))
    assert len(got) == len(SAMPLES)
    by_topic = {r.topic.removeprefix(unique_prefix): r for r in got}
    for topic, record in SAMPLES.items():
        received = by_topic[topic]
        assert received.key == b"key-1"
        assert codec.decode(topic, received.value) == record, topic
