"""Market inputs a consumer skipped at an assignment (streams/agents/skipped.py), on a real broker:
the records between the offset the partition resumed from and its first input are read from the
broker and handled in order before it, once per assignment, and the consumer is told they are
done."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP

from infra.settings import Settings
from streams.agents.skipped import SkippedInputs
from streams.kafka_io import Received
from tests.streams.raw_topic import write_topic

pytestmark = pytest.mark.broker


class Consumer:
    """Faust's consumer as the check reads it: the offsets it resumed from, the gaps it is told."""

    def __init__(self, committed: dict[TP, int]) -> None:
        self._committed_offset = committed
        self.gaps: list[tuple[TP, int, int]] = []

    async def _add_gap(self, tp: TP, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))


def _topic(settings: Settings, name: str, n: int) -> None:
    """A one-partition topic with records 0 to n-1 (the value is the offset)."""
    write_topic(settings, name, 1, [(0, b"BTC", str(i).encode()) for i in range(n)])


def test_the_records_skipped_before_the_first_input_are_handled_first(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    name = f"{unique_prefix}oracle-prices"
    _topic(settings, name, 10)
    consumer = Consumer({TP(name, 0): 3})
    skipped = SkippedInputs(settings, lambda: consumer)
    handled: list[int] = []

    async def handle(event: Any) -> None:
        handled.append(int(event.message.value))

    def first(offset: int) -> Received:
        return Received(name, 0, offset, b"BTC", str(offset).encode())

    asyncio.run(skipped.before(first(8), handle))
    assert handled == [3, 4, 5, 6, 7]
    assert consumer.gaps == [(TP(name, 0), 3, 7)]
    asyncio.run(skipped.before(first(9), handle))  # not the first since the assignment
    assert handled == [3, 4, 5, 6, 7]
    skipped.forget()
    asyncio.run(skipped.before(first(3), handle))  # resumed where it was committed: no hole
    assert handled == [3, 4, 5, 6, 7] and len(consumer.gaps) == 1


def test_a_partition_never_committed_is_taken_as_it_comes(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    consumer = Consumer({})
    skipped = SkippedInputs(settings, lambda: consumer)

    async def handle(event: Any) -> None:
        raise AssertionError("nothing to read")

    asyncio.run(skipped.before(Received("t", 0, 5, None, b""), handle))
    assert consumer.gaps == []
