"""The router's continuity: a record handed over past the partition's next offset has the hole
before it read from the broker and forwarded first, in order, each with its origin; the consumer
is told the hole is done; late copies are forwarded again (the account agent skips them by their
origin). Faust's consumer and producer are stand-ins recording what the router asks of them."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from faust.types import TP

from infra.settings import Settings
from streams.agents import router as router_module
from streams.agents.metrics import WorkerMetrics
from streams.agents.router import Router
from streams.kafka_io import Received
from streams.scaling.layout import account_partition
from streams.scaling.origin import HEADER

SETTINGS = Settings(topic_prefix="spma.", generation=1, account_partitions=8)
FILLS = "spma.fills"


@dataclass
class Consumer:
    """The fields of Faust's consumer the router reads and writes (streams/agents/private.py)."""

    _committed_offset: dict[TP, int] = field(default_factory=dict)
    _acked: dict[TP, list[int]] = field(default_factory=lambda: defaultdict(list))
    _acked_index: dict[TP, set[int]] = field(default_factory=lambda: defaultdict(set))
    _n_acked: int = 0
    gaps: list[tuple[TP, int, int]] = field(default_factory=list)

    async def _add_gap(self, tp: TP, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))


@dataclass
class Producer:
    """Records every send: (topic, key, partition, origin)."""

    sent: list[tuple[str, bytes | None, int, list[Any]]] = field(default_factory=list)

    async def send(self, topic: str, key: Any, value: Any, partition: int, *rest: Any) -> None:
        headers = dict(rest[-1])
        self.sent.append((topic, key, partition, orjson.loads(headers[HEADER])))


@dataclass
class App:
    consumer: Consumer = field(default_factory=Consumer)
    producer: Producer = field(default_factory=Producer)


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


@dataclass
class Event:
    message: Message


def _key(offset: int) -> bytes:
    return f'"acct-{offset % 5}"'.encode()


def _event(partition: int, offset: int) -> Event:
    return Event(Message(FILLS, partition, offset, _key(offset), b"v%d" % offset))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int, int]]:
    """read_range answered from a partition of 100 records; each read recorded."""
    reads: list[tuple[str, int, int, int]] = []

    def read_range(settings: Settings, topic: str, partition: int, start: int, end: int) -> Any:
        reads.append((topic, partition, start, end))
        return [Received(topic, partition, o, _key(o), b"v%d" % o, ()) for o in range(start, end)]

    monkeypatch.setattr(router_module, "read_range", read_range)
    return reads


def _route(router: Router, events: list[Event]) -> None:
    async def run() -> None:
        for event in events:
            await router.on_event(event)

    asyncio.run(run())


def test_records_in_order_are_forwarded_to_their_accounts_partition(broker: list[Any]) -> None:
    app = App()
    router = Router(SETTINGS, app, WorkerMetrics())
    _route(router, [_event(2, o) for o in range(3)])
    assert broker == []
    assert [s[3] for s in app.producer.sent] == [[FILLS, 2, o] for o in range(3)]
    for topic, key, partition, _ in app.producer.sent:
        assert topic == "spma.g1.fills"
        assert partition == account_partition(key, 8)


def test_a_hole_is_read_from_the_broker_and_forwarded_first(broker: list[Any]) -> None:
    app = App()
    router = Router(SETTINGS, app, WorkerMetrics())
    _route(router, [_event(2, 0), _event(2, 1), _event(2, 5), _event(2, 6)])
    assert broker == [(FILLS, 2, 2, 5)]
    assert [s[3][2] for s in app.producer.sent] == [0, 1, 2, 3, 4, 5, 6]
    assert app.consumer.gaps == [(TP(FILLS, 2), 2, 4)]
    assert 4 in app.consumer._acked_index[TP(FILLS, 2)]  # the hole's last: acknowledged


def test_the_first_record_is_checked_against_the_committed_offset(broker: list[Any]) -> None:
    """Consumption resumed at the group's committed offset 10; the first record handed over is
    13: 10 to 12 were skipped and are read first. Without a commit, from offset 0."""
    app = App()
    app.consumer._committed_offset[TP(FILLS, 4)] = 10
    router = Router(SETTINGS, app, WorkerMetrics())
    _route(router, [_event(4, 13), _event(1, 2)])
    assert broker == [(FILLS, 4, 10, 13), (FILLS, 1, 0, 2)]
    forwarded = [(s[3][1], s[3][2]) for s in app.producer.sent]
    assert forwarded == [(4, 10), (4, 11), (4, 12), (4, 13), (1, 0), (1, 1), (1, 2)]


def test_a_late_copy_is_forwarded_again_and_the_next_offset_stays(broker: list[Any]) -> None:
    """A record below the next offset (handed over again after a rebalance) goes out again: the
    account agent skips it by its origin. It does not move the partition back."""
    app = App()
    router = Router(SETTINGS, app, WorkerMetrics())
    _route(router, [_event(3, 0), _event(3, 1), _event(3, 0), _event(3, 2)])
    assert broker == []
    assert [s[3][2] for s in app.producer.sent] == [0, 1, 0, 2]


def test_forgotten_partitions_resume_from_the_committed_offset(broker: list[Any]) -> None:
    app = App()
    router = Router(SETTINGS, app, WorkerMetrics())
    _route(router, [_event(0, 0), _event(0, 1)])
    router.forget([TP(FILLS, 0)])
    app.consumer._committed_offset[TP(FILLS, 0)] = 2
    _route(router, [_event(0, 4)])
    assert broker == [(FILLS, 0, 2, 4)]
    assert [s[3][2] for s in app.producer.sent] == [0, 1, 2, 3, 4]
