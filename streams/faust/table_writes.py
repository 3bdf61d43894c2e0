"""Table writes aimed at a partition, whatever event Faust thinks is current.

Faust picks a table write's changelog partition (and, with the RocksDB store, the partition's
database) from the event being processed. Writes from a timer have no event, and writes for a
batch of events must follow each record's own partition rather than the batch's last event: both
go through ``writing_to(topic, partition)``, which makes a stand-in event of that partition current.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from faust.streams import _current_event


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
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)
