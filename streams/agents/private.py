"""Every use of Faust's (and aiokafka's, through Faust) private API, in one place, with the
versions it was written for: ``check_versions`` says at start-up when they differ, and each
function says clearly what it reaches for when that is gone.

Table writes aimed at a partition, whatever event Faust thinks is current.

Faust picks a table write's changelog partition (and, with the RocksDB store, the partition's
database) from the event being processed. Writes from a timer have no event, and writes for a
batch of events must follow each record's own partition rather than the batch's last event: both
go through ``writing_to(topic, partition)``, which makes a stand-in event of that partition current.

The fetch wait. Faust creates its worker consumer with aiokafka's ``fetch_max_wait_ms`` fixed at
1,500 ms. Apache Kafka answers a fetch as soon as a record is there, so the wait only bounds an
idle poll; the embedded broker (Tansu 0.6) holds the fetch for much of it even when records
arrive, and that delay lands on every input: with 1,500 ms a fill's status came back after
0.4 s at 200 fills a second and 1.4 s at 1,000; with 10 ms, 43 ms and 54 ms (p50), next to the
~30 ms the broker itself takes to hand a record from a producer to a consumer
(bench/bench_pipeline.py measures both). A short wait costs an idle worker a few more empty
fetches a second, nothing else.

Idempotent producers. Faust asks aiokafka for an idempotent producer only inside transactions;
the worker wants one always (acks=all), so that a retried send is written once.

Gaps. When the worker reads a hole of skipped records itself (streams/accounts/cursor.py,
streams/agents/skipped.py), it tells the consumer those offsets are done, so that its commits move
past them. The offset a partition was committed at when it was assigned (Faust seeks there) is
Faust's ``_committed_offset``; the offset it last handed over of a partition is its
``_read_offset``, forgotten at each assignment (``forget_read_offsets``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiokafka
import faust
from faust.streams import _current_event
from faust.types import TP
from faust.types import tuples as faust_tuples

log = logging.getLogger("spma")

WRITTEN_FOR = {"faust-streaming": "0.15", "aiokafka": "0.14"}
"""The minor versions whose private API this module was written and tested against."""


def check_versions() -> list[str]:
    """The installed Faust and aiokafka versions that differ from those this module was written
    for, each logged once as a warning (the functions below still check what they touch)."""
    installed = {"faust-streaming": faust.__version__, "aiokafka": aiokafka.__version__}
    differ = [
        f"{name} {version} (written for {WRITTEN_FOR[name]}.x)"
        for name, version in installed.items()
        if not version.startswith(WRITTEN_FOR[name] + ".")
    ]
    for line in differ:
        log.warning("private API of %s: check streams/agents/private.py", line)
    return differ


@dataclass
class _Message:
    """The fields of a message that table writes read."""

    topic: str
    partition: int


@dataclass
class _PartitionEvent:
    """A stand-in for the current event: only its message's partition is read."""

    message: _Message


@contextmanager
def writing_to(topic: str, partition: int) -> Iterator[None]:
    """Table writes inside the block go to ``partition`` (changelog and store), as if made for
    an input of ``topic`` (Faust checks that it has as many partitions as the table)."""
    event = _PartitionEvent(_Message(topic, partition))
    # Faust types the variable as holding a reference to its own EventT; a stand-in goes in
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


_WAIT_ATTRIBUTE = "_fetch_max_wait_ms"  # where aiokafka keeps it until the consumer starts


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Make every worker consumer Faust creates from now on wait at most `max_wait_ms` for a
    fetch (idempotent; the last value wins)."""
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    original = getattr(thread, "_spma_original_create", thread._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        if not hasattr(consumer, _WAIT_ATTRIBUTE):
            raise RuntimeError("aiokafka changed: AIOKafkaConsumer has no fetch wait attribute")
        setattr(consumer, _WAIT_ATTRIBUTE, max_wait_ms)
        return consumer

    # a patch of Faust's class: the original kept on it, its method replaced
    thread._spma_original_create = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = create  # type: ignore[method-assign]


def make_producers_idempotent() -> None:
    """Make every aiokafka producer Faust creates from now on idempotent with acks=all (Faust
    asks for it only inside transactions): a retried send after a leader change or a lost
    acknowledgement is then written once. Idempotent."""
    from faust.transport.drivers import aiokafka as driver

    producer = driver.Producer
    original = getattr(producer, "_spma_original_extra", producer._settings_extra)

    def extra(self: Any) -> Any:
        return {**original(self), "acks": "all", "enable_idempotence": True}

    # a patch of Faust's class: the original kept on it, its method replaced
    producer._spma_original_extra = original  # type: ignore[attr-defined]
    producer._settings_extra = extra  # type: ignore[method-assign]


def size_producer_buffer(app: Any, max_messages: int, on_full: Callable[[], None]) -> None:
    """Let Faust's producer buffer (table writes waiting to be sent) hold ``max_messages`` before
    the agents wait for it to drain (Faust's 100 is less than one account batch writes, and warns
    each time), and call ``on_full`` whenever it is full."""
    buffer = app.producer.buffer
    if not hasattr(buffer, "max_messages") or not hasattr(buffer, "wait_until_ebb"):
        log.error("faust changed: its ProducerBuffer has no max_messages (private.py)")
        return
    buffer.max_messages = max(buffer.max_messages, max_messages)
    original = buffer.wait_until_ebb

    async def wait_until_ebb() -> None:
        if buffer.size > buffer.max_messages:
            on_full()
        await original()

    buffer.wait_until_ebb = wait_until_ebb


def aiohttp_app(app: Any) -> Any:
    """The aiohttp application under Faust's web server (its aiohttp driver's ``web_app``), for
    the middleware in front of every view."""
    web_app = getattr(app.web, "web_app", None)
    if web_app is None:
        raise RuntimeError("faust changed: its web server has no aiohttp application")
    return web_app


def committed_offset(consumer: Any, topic: str, partition: int) -> int | None:
    """The offset a partition's consumption resumed from at its assignment (the group's committed
    offset, read by Faust when it sought there; None when none was committed, or 0)."""
    offsets = getattr(consumer, "_committed_offset", None)
    if offsets is None:
        log.error(
            "faust changed: its Consumer has no _committed_offset (streams/agents/private.py)"
        )
        return None
    offset = offsets.get(TP(topic, partition))
    return offset if isinstance(offset, int) and offset > 0 else None


def forget_read_offsets(consumer: Any, partitions: Iterable[Any]) -> None:
    """Forget the offset Faust last handed over of each assigned partition (its ``_read_offset``):
    Faust resets it only where the group had committed, so a partition kept through a rebalance
    before its first commit kept it, and every record fetched again from the start below it
    was dropped as read (the market agent lost listings that way at a new group's first
    rebalance). Partitions with a commit get it back from Faust's seek."""
    offsets = getattr(consumer, "_read_offset", None)
    if offsets is None:
        log.error("faust changed: its Consumer has no _read_offset (streams/agents/private.py)")
        return
    for tp in partitions:
        offsets[tp] = None


async def add_gap(consumer: Any, topic: str, partition: int, start: int, end: int) -> None:
    """Tell Faust's consumer that offsets ``start`` to ``end`` of a partition are handled (the
    worker read them itself), so that its committed offset moves past them.

    The last of them also counts as acknowledged: Faust turns a gap into a commit only up to an
    offset acknowledged after it, so records repaired at a partition's tail, with no later record
    handed over, stayed uncommitted until one came (the group's lag never reached 0, and the
    demo's and the tests' waits on it timed out)."""
    gap = getattr(consumer, "_add_gap", None)
    if gap is None:  # the records are handled; only the committed offset lags until later ones
        log.error("faust changed: its Consumer has no _add_gap (streams/agents/private.py)")
        return
    await gap(TP(topic, partition), start, end)
    _acknowledge(consumer, TP(topic, partition), end)


_ACK_LOCK = getattr(faust_tuples, "ack_lock", None) or threading.RLock()
"""The lock Faust's consumer takes to count an acknowledgement (its own, where it has one)."""


def _acknowledge(consumer: Any, tp: TP, offset: int) -> None:
    """Count an offset as acknowledged, as Faust's ``Consumer.ack`` does for a message it handed
    over (under its lock; nothing below the committed offset)."""
    acked, index = getattr(consumer, "_acked", None), getattr(consumer, "_acked_index", None)
    if acked is None or index is None:
        log.error("faust changed: its Consumer has no _acked (streams/agents/private.py)")
        return
    with _ACK_LOCK:
        committed = consumer._committed_offset.get(tp)
        if (committed is not None and offset < committed) or offset in index[tp]:
            return
        index[tp].add(offset)
        acked[tp].append(offset)
        consumer._n_acked += 1


def assigned(app: Any, topics: Iterable[str]) -> list[tuple[str, int]]:
    """The partitions this worker holds (actively) of some full topic names."""
    names = set(topics)
    return [(tp.topic, tp.partition) for tp in app.assignor.assigned_actives() if tp.topic in names]


def consumer_ends(app: Any, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """The end offset (high watermark) the consumer last saw of each partition it holds of some
    full topic names (partitions whose end it has not seen yet are left out)."""
    names = set(topics)
    ends: dict[tuple[str, int], int] = {}
    for tp in app.assignor.assigned_actives():
        if tp.topic in names:
            end = app.consumer.highwater(tp)
            if isinstance(end, int) and end >= 0:
                ends[tp.topic, tp.partition] = end
    return ends


def fetch_view(app: Any, topic: str, partition: int) -> str:
    """How Faust's consumer sees a partition's fetching (whether it is in the active set it
    fetches, paused, or out while its stream's buffer is full), for a log line."""
    consumer = app.consumer
    tp = TP(topic, partition)
    sets = {
        "active": getattr(consumer, "_active_partitions", None),
        "paused": getattr(consumer, "_paused_partitions", None),
        "buffer full": getattr(consumer, "_buffered_partitions", None),
    }
    if any(v is None for v in sets.values()):
        return "faust changed: its Consumer has no _active_partitions (streams/agents/private.py)"
    return ", ".join(
        f"{name}: {'yes' if tp in (tps or ()) else 'no'}" for name, tps in sets.items()
    )


def resume_fetching(app: Any, partitions: Iterable[tuple[str, int]]) -> None:
    """Put partitions back in the set Faust's consumer fetches (and out of its paused and
    buffer-full sets), as Faust does after a recovery."""
    tps = {TP(topic, partition) for topic, partition in partitions}
    app.consumer.resume_partitions(tps)
    buffered = getattr(app.consumer, "_buffered_partitions", None)
    if buffered is not None:
        buffered.difference_update(tps)
