"""Market inputs a consumer skipped around an assignment (streams/agents/skipped.py), on a real
broker: the records between the offset the partition resumed from and its first input, and the
records that wait unhanded at the tail, are read from the broker and handled in order, once, and
the consumer is told they are done."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from faust.types import TP

from infra.settings import Settings
from streams.agents.guard import Replayed
from streams.agents.skipped import REPAIR_AFTER_S, SkippedInputs
from streams.kafka_io import Received
from tests.streams.raw_topic import write_topic

pytestmark = pytest.mark.broker


class Consumer:
    """Faust's consumer as the check reads it: the offsets it resumed from, the gaps it is told."""

    def __init__(self, committed: dict[TP, int]) -> None:
        self._committed_offset = committed
        self.gaps: list[tuple[TP, int, int]] = []
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)  # the last of each gap
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._n_acked = 0

    async def _add_gap(self, tp: TP, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))


def _topic(settings: Settings, name: str, n: int) -> None:
    """A one-partition topic with records 0 to n-1 (the value is the offset)."""
    write_topic(settings, name, 1, [(0, b"BTC", str(i).encode()) for i in range(n)])


class Agent:
    """The market agent as the check drives it: the offsets it handled, in order."""

    def __init__(self) -> None:
        self.handled: list[int] = []

    async def handle(self, event: Any) -> None:
        self.handled.append(int(event.message.value))


def _event(name: str, offset: int) -> Replayed:
    """An input handed over by the consumer (shaped like Faust's event)."""
    return Replayed(Received(name, 0, offset, b"BTC", str(offset).encode()))


def test_the_records_skipped_before_the_first_input_are_handled_first(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    name = f"{unique_prefix}oracle-prices"
    _topic(settings, name, 10)
    consumer, agent = Consumer({TP(name, 0): 3}), Agent()
    skipped = SkippedInputs(settings, lambda: consumer, agent.handle)
    assert asyncio.run(skipped.on_input(_event(name, 8)))
    assert agent.handled == [3, 4, 5, 6, 7, 8]
    assert consumer.gaps == [(TP(name, 0), 3, 7)]
    assert consumer._acked[TP(name, 0)] == [7]  # so that Faust commits past the gap
    assert asyncio.run(skipped.on_input(_event(name, 9)))  # not the first since the assignment
    assert agent.handled == [3, 4, 5, 6, 7, 8, 9]
    skipped.forget()
    asyncio.run(skipped.on_input(_event(name, 3)))  # resumed where it was committed: no hole
    assert agent.handled[-1] == 3 and len(consumer.gaps) == 1


def test_a_partition_never_committed_is_read_from_its_start(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    """A new group's first rebalance: the first owner handled (and dropped) some records without
    committing; the next owner's first input is past the start, and the start is where it
    resumed."""
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    name = f"{unique_prefix}instruments"
    _topic(settings, name, 6)
    consumer, agent = Consumer({}), Agent()
    skipped = SkippedInputs(settings, lambda: consumer, agent.handle)
    asyncio.run(skipped.on_input(_event(name, 4)))
    assert agent.handled == [0, 1, 2, 3, 4]
    assert consumer.gaps == [(TP(name, 0), 0, 3)]
    skipped.forget()
    asyncio.run(skipped.on_input(_event(name, 0)))  # from the start: no hole
    assert agent.handled[-1] == 0 and len(consumer.gaps) == 1


def test_records_waiting_at_the_tail_are_read_once(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    """Records the consumer saw arrive but never handed over (no later input reveals them) are
    read after ``REPAIR_AFTER_S`` with nothing handled; handed over late, they are passed over."""
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    name = f"{unique_prefix}instruments"
    _topic(settings, name, 7)
    tp = (name, 0)
    consumer, agent = Consumer({TP(name, 0): 2}), Agent()
    skipped = SkippedInputs(settings, lambda: consumer, agent.handle)

    async def play() -> None:
        await skipped.on_input(_event(name, 2))
        await skipped.repair({tp: 7}, 100.0)  # the end moved: the clock starts
        await skipped.repair({tp: 7}, 100.0 + REPAIR_AFTER_S / 2)  # not yet
        assert agent.handled == [2]
        await skipped.repair({tp: 7}, 100.0 + REPAIR_AFTER_S)
        assert agent.handled == [2, 3, 4, 5, 6]
        assert not await skipped.on_input(_event(name, 5))  # handed over late: done already
        assert await skipped.on_input(_event(name, 7))
        await skipped.repair({tp: 8}, 200.0)
        await skipped.repair({tp: 8}, 300.0)  # nothing waits past the next offset

    asyncio.run(play())
    assert agent.handled == [2, 3, 4, 5, 6, 7]
    assert consumer.gaps == [(TP(name, 0), 3, 6)]


def test_a_partition_never_handed_over_is_read_from_where_it_resumed(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    """No input of the partition at all since the assignment: its records from the committed
    offset (or its start) to the end are read; an empty or done partition reads nothing."""
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    name = f"{unique_prefix}instruments"
    _topic(settings, name, 4)
    empty = f"{unique_prefix}book-depth"
    write_topic(settings, empty, 1, [])
    consumer, agent = Consumer({}), Agent()
    skipped = SkippedInputs(settings, lambda: consumer, agent.handle)

    async def play() -> None:
        for now in (0.0, REPAIR_AFTER_S):
            await skipped.repair({(name, 0): 4, (empty, 0): 0}, now)

    asyncio.run(play())
    assert agent.handled == [0, 1, 2, 3]
    assert consumer.gaps == [(TP(name, 0), 0, 3)]
