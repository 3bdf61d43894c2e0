"""The worker's guard (streams/agents/guard.py), without a broker: a rejected input and a bug met
on one both go to the dlq with their reason and the agent goes on; an I/O error is not swallowed.

The dlq is a port the guard is handed (a Faust topic in the worker); here it is a list that keeps
what was sent, decoded with the real codec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.settings import Settings
from streams import records as r
from streams.agents.guard import Guard, Replayed
from streams.agents.metrics import WorkerMetrics
from streams.codec import codec_from_settings
from streams.errors import InputRejected
from streams.kafka_io import Received
from streams.topics.catalog import Topic

SETTINGS = Settings()
CODEC = codec_from_settings(SETTINGS)


@dataclass
class SentToDlq:
    """The dlq port: keeps each record sent, decoded."""

    records: list[r.DlqRecord] = field(default_factory=list)

    async def send(self, key: bytes | None, value: bytes) -> None:
        record = CODEC.decode(Topic.DLQ, value)
        assert isinstance(record, r.DlqRecord)
        self.records.append(record)


def _guard() -> tuple[Guard, SentToDlq, list[Any]]:
    dlq = SentToDlq()
    guard = Guard(SETTINGS, CODEC, dlq, WorkerMetrics())
    cleaned: list[Any] = []
    guard.on_internal_error = cleaned.append
    return guard, dlq, cleaned


EVENT = Replayed(Received(SETTINGS.topic(Topic.FILLS), 3, 41, b"acct", b"\x00raw"))


async def test_a_rejected_input_goes_to_the_dlq_with_its_reason() -> None:
    guard, dlq, cleaned = _guard()
    before: list[Any] = []

    async def handler(event: Any) -> str:
        raise InputRejected(r.DlqReason.OUT_OF_RANGE, "price 1e+30")

    outcome, _ = await guard.run(handler, EVENT, before.append)
    assert outcome == "dlq" and len(before) == 1 and cleaned == []
    (record,) = dlq.records
    assert (record.reason, record.detail, record.offset, record.key, record.value) == (
        r.DlqReason.OUT_OF_RANGE,
        "price 1e+30",
        41,
        b"acct",
        b"\x00raw",
    )


async def test_a_bug_met_on_one_input_sends_it_to_the_dlq_and_cleans_up() -> None:
    guard, dlq, cleaned = _guard()

    async def handler(event: Any) -> str:
        raise TypeError("Integer exceeds 64-bit range")

    outcome, _ = await guard.run(handler, EVENT)
    assert outcome == "dlq"
    assert [d.reason for d in dlq.records] == [r.DlqReason.INTERNAL_ERROR]
    assert "TypeError: Integer exceeds 64-bit range" in dlq.records[0].detail
    assert cleaned == [EVENT.message]

    async def fine(event: Any) -> str:
        return "applied"

    assert (await guard.run(fine, EVENT))[0] == "applied"  # the agent goes on


async def test_an_io_error_is_not_swallowed() -> None:
    """A broker or network failure must stop the input, not send it to the dlq as lost."""
    guard, dlq, cleaned = _guard()

    async def handler(event: Any) -> str:
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError):
        await guard.run(handler, EVENT)
    assert dlq.records == [] and cleaned == []
