"""Shared fixtures: one Kafka-compatible broker per test session, chosen in this order:

1. SPMA_KAFKA_BOOTSTRAP, a broker someone already runs;
2. testcontainers' Apache Kafka when a Docker engine answers;
3. Apache Kafka from Maven Central (infra/kafka_broker.py) where Java 17 and Maven are present;
4. the embedded Tansu broker.

SPMA_TEST_BROKER=kafka|tansu skips the choice (the Tansu lane of `.ci/run` sets tansu). The
pytest header names the broker and its version.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.broker import EmbeddedBroker, tansu_version, wait_for_metadata
from infra.kafka_broker import KafkaCluster, kafka_version, missing_tools

SHARED = "PYTEST_SPMA_SHARED_BROKER"
"""Set by an xdist controller for its workers: the kind and version of the broker it started
(its address in SPMA_KAFKA_BOOTSTRAP), so that the session still has one broker."""
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
    """The session's broker, in the order of the module docstring (an xdist worker takes the
    one its controller started: ``SHARED``)."""
    shared = os.environ.get(SHARED)
    if shared:
        kind, _, version = shared.partition("|")
        return BrokerChoice(kind, version)
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


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist (``-n``), the controller starts the session's broker before its workers, and
    they all use it; it is stopped when the session ends."""
    if getattr(config, "workerinput", None) is not None or not _xdist_workers(config):
        return
    if _CHOICE.kind == "external" or os.environ.get(SHARED):
        return
    broker = _start_broker()
    bootstrap = broker.__enter__()
    config.add_cleanup(lambda: broker.__exit__(None, None, None))
    os.environ["SPMA_KAFKA_BOOTSTRAP"] = bootstrap
    os.environ[SHARED] = f"{_CHOICE.kind}|{_CHOICE.version}"


def _xdist_workers(config: pytest.Config) -> bool:
    """Whether the session runs xdist workers."""
    return bool(getattr(config.option, "numprocesses", None)) and not getattr(
        config.option, "collectonly", False
    )


def _start_broker() -> contextlib.AbstractContextManager[str]:
    """The session's broker as a context manager giving its address."""
    kind = _CHOICE.kind
    if kind == "docker":
        return _docker_kafka()
    if kind == "kafka":
        return _bootstrap_of(KafkaCluster(heap_mb=768))
    return _bootstrap_of(EmbeddedBroker())


@contextlib.contextmanager
def _bootstrap_of(broker: KafkaCluster | EmbeddedBroker) -> Iterator[str]:
    """A started broker's address."""
    with broker as running:
        yield running.bootstrap


@contextlib.contextmanager
def _docker_kafka() -> Iterator[str]:
    """testcontainers' Apache Kafka's address."""
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer(TESTCONTAINERS_KAFKA).with_kraft() as container:
        yield container.get_bootstrap_server()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a running broker, shared by the whole session."""
    if _CHOICE.kind == "external" or os.environ.get(SHARED):
        given = os.environ["SPMA_KAFKA_BOOTSTRAP"]
        wait_for_metadata(given, timeout_s=30.0)
        yield given
    else:
        with _start_broker() as bootstrap:
            yield bootstrap


@pytest.fixture(scope="session")
def broker_kind(broker_choice: BrokerChoice) -> str:
    """Which broker the session runs on: 'external', 'docker', 'kafka' or 'tansu' (for skips)."""
    return broker_choice.kind


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix no other test uses, so tests on the shared broker never see each other."""
    return f"t{uuid.uuid4().hex[:10]}."
