"""Shared fixtures: one Kafka-compatible broker per test session, chosen in this order:

1. SPMA_KAFKA_BOOTSTRAP, a broker someone already runs;
2. testcontainers' Apache Kafka when a Docker engine answers;
3. Apache Kafka from Maven Central (infra/kafka_broker.py) where Java 17 and Maven are present;
4. the embedded Tansu broker.

SPMA_TEST_BROKER=kafka|tansu skips the choice (the Tansu lane of `.ci/run` sets tansu). The
pytest header names the broker and its version.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.broker import EmbeddedBroker, tansu_version, wait_for_metadata
from infra.kafka_broker import KafkaCluster, kafka_version, missing_tools

TESTCONTAINERS_KAFKA = "confluentinc/cp-kafka:8.1.0"
"""testcontainers' KafkaContainer drives Confluent's image: 8.1 is Apache Kafka 4.1, as pinned in
infra/kafka/pom.xml."""


@dataclass(frozen=True)
class BrokerChoice:
    """Which broker the session runs on: 'external', 'docker', 'kafka' or 'tansu'."""

    kind: str
    version: str

    def describe(self) -> str:
        """A line for the pytest header."""
        names = {
            "external": "an external broker (SPMA_KAFKA_BOOTSTRAP)",
            "docker": "Apache Kafka in Docker (testcontainers)",
            "kafka": "Apache Kafka from Maven Central",
            "tansu": "Tansu (embedded)",
        }
        return f"broker: {names[self.kind]} {self.version}".rstrip()


def _docker_engine_answers() -> bool:
    """True when a Docker engine (not just the client) responds to a ping."""
    if os.environ.get("SPMA_TEST_DOCKER", "1") != "1":
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


def choose_broker() -> BrokerChoice:
    """The session's broker, in the order of the module docstring."""
    given = os.environ.get("SPMA_KAFKA_BOOTSTRAP")
    if given:
        return BrokerChoice("external", f"at {given}")
    forced = os.environ.get("SPMA_TEST_BROKER", "")
    if forced == "tansu":
        return BrokerChoice("tansu", tansu_version())
    if forced == "kafka":
        return BrokerChoice("kafka", kafka_version())
    if forced:
        raise pytest.UsageError(f"SPMA_TEST_BROKER={forced!r}: want kafka or tansu")
    if _docker_engine_answers():
        return BrokerChoice("docker", f"({TESTCONTAINERS_KAFKA})")
    if missing_tools() is None:
        return BrokerChoice("kafka", kafka_version())
    return BrokerChoice("tansu", tansu_version())


_CHOICE = choose_broker()
if _CHOICE.kind == "tansu":
    # Tansu rejects aiokafka's idempotent producer; workers the tests start inherit this.
    os.environ.setdefault("SPMA_PRODUCER_IDEMPOTENCE", "false")


def pytest_report_header() -> list[str]:
    """Name the session's broker in the header."""
    return [_CHOICE.describe()]


@pytest.fixture(scope="session")
def broker_choice() -> BrokerChoice:
    """The session's broker kind and version."""
    return _CHOICE


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a running broker, shared by the whole session."""
    kind = _CHOICE.kind
    if kind == "external":
        given = os.environ["SPMA_KAFKA_BOOTSTRAP"]
        wait_for_metadata(given, timeout_s=30.0)
        yield given
    elif kind == "docker":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(TESTCONTAINERS_KAFKA).with_kraft() as container:
            yield container.get_bootstrap_server()
    elif kind == "kafka":
        with KafkaCluster(heap_mb=768) as cluster:
            yield cluster.bootstrap
    else:
        with EmbeddedBroker() as broker:
            yield broker.bootstrap


@pytest.fixture(scope="session")
def broker_kind(broker_choice: BrokerChoice) -> str:
    """Which broker the session runs on: 'external', 'docker', 'kafka' or 'tansu' (for skips)."""
    return broker_choice.kind


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix no other test uses, so tests on the shared broker never see each other."""
    return f"t{uuid.uuid4().hex[:10]}."
