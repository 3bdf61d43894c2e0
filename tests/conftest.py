"""Shared fixtures: one Kafka-compatible broker per test session, chosen as streams.md says.

Order: SPMA_KAFKA_BOOTSTRAP if set; else testcontainers' Kafka when a Docker engine answers; else
the embedded Tansu broker on a free loopback port.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from infra.broker import EmbeddedBroker, wait_for_metadata


def _docker_engine_answers() -> bool:
    """True when a Docker engine (not just the client) responds to a ping."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a running broker, shared by the whole session."""
    given = os.environ.get("SPMA_KAFKA_BOOTSTRAP")
    if given:
        wait_for_metadata(given, timeout_s=30.0)
        yield given
        return
    if os.environ.get("SPMA_TEST_DOCKER", "1") == "1" and _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def broker_kind(kafka_bootstrap: str) -> str:
    """Which broker the session runs on: 'external', 'docker' or 'tansu' (for skips)."""
    if os.environ.get("SPMA_KAFKA_BOOTSTRAP"):
        return "external"
    return "tansu" if not _docker_engine_answers() else "docker"


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix no other test uses, so tests on the shared broker never see each other."""
    return f"t{uuid.uuid4().hex[:10]}."
