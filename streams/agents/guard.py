"""The one place an input is turned away: a handler that raises ``InputRejected`` (a codec
failure included) has its input sent to the dlq with its origin and reason; every input is
counted by topic and outcome and timed (streams/agents/metrics.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from infra.settings import Settings
from streams.agents.metrics import WorkerMetrics
from streams.codec import AvroCodec
from streams.errors import InputRejected
from streams.kafka_io import Received
from streams.records import DlqReason, DlqRecord
from streams.topics.catalog import Topic

log = logging.getLogger("spma")

WAITING = "waiting"
"""A handler's outcome for an input applied whose status is due when its wave is settled: it is
counted then, with its share of the wave's margin pass (streams/agents/account_agent.py)."""


class Message(Protocol):
    """What the worker reads of a consumed record (Faust's message, or one it read itself)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Event(Protocol):
    """A consumed record as Faust hands it to an agent."""

    @property
    def message(self) -> Any: ...


@dataclass(frozen=True)
class Replayed:
    """A record read from the broker by the worker itself, shaped like a Faust event."""

    message: Received


DOMAIN_ERRORS = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    LookupError,
    TypeError,
    ValueError,
)
"""What the margin logic raises when it meets an input it cannot handle (a bug): that input goes
to the dlq as INTERNAL_ERROR and the agent goes on. I/O errors (the broker, the network) are not
among them: they must stop the input, not lose it."""

Handler = Callable[[Any], Awaitable[str]]
BeforeReject = Callable[[Any], None]


class Guard:
    """Runs handlers: rejected inputs to the dlq, outcomes counted and timed."""

    def __init__(
        self, settings: Settings, codec: AvroCodec, dlq: Any, metrics: WorkerMetrics
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.dlq = dlq
        self.metrics = metrics
        self.on_internal_error: Callable[[Any], None] | None = None  # the worker's clean-up

    def logical(self, topic: str) -> str:
        """Topic name without the prefix (nor a generation's tag)."""
        return self.settings.logical_topic(topic)

    async def run(
        self, handler: Handler, event: Any, before_reject: BeforeReject | None = None
    ) -> tuple[str, float]:
        """Run a handler on an event; its outcome (``dlq`` when rejected) and the time spent.
        ``before_reject`` runs, without an await, before a rejection is sent."""
        started = time.perf_counter()
        outcome = "dlq"
        try:
            outcome = await handler(event)
        except InputRejected as exc:
            if before_reject is not None:
                before_reject(event.message)
            await self.reject(event.message, exc)
        except (
            DOMAIN_ERRORS
        ) as exc:  # a bug met on one input: that input to the dlq, the rest go on
            msg = event.message
            log.exception("internal error on %s:%s@%s", msg.topic, msg.partition, msg.offset)
            if before_reject is not None:
                before_reject(msg)
            detail = f"{type(exc).__name__}: {exc}"
            await self.reject(msg, InputRejected(DlqReason.INTERNAL_ERROR, detail))
            if self.on_internal_error is not None:
                self.on_internal_error(msg)
        spent = time.perf_counter() - started
        if outcome != WAITING:
            self.metrics.handled(self.logical(event.message.topic), outcome, spent)
        return outcome, spent

    async def reject(self, msg: Message, exc: InputRejected) -> None:
        """Send a record to the dlq with its origin and the reason."""
        record = DlqRecord(
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=msg.value,
            reason=exc.reason,
            detail=exc.detail[:2000],
            ts=datetime.now(tz=UTC),
        )
        log.warning(
            "dlq %s %s:%s@%s %s",
            exc.reason.value,
            msg.topic,
            msg.partition,
            msg.offset,
            exc.detail,
        )
        await self.dlq.send(key=msg.key, value=self.codec.encode(Topic.DLQ, record))
        self.metrics.rejected(exc.reason.value)
