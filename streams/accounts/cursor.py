"""Input continuity: every offset of an account partition's inputs is handled, in order, whatever
the consumer's offset bookkeeping does.

Why. The consumer can hand the account agent a partition's inputs with a hole in them, and the
table would then lack inputs nobody reads again:

- faust-streaming 0.15's fetcher sets a partition's read offset after handing a record to the
  stream, and a record fetched before a rebalance can be handed over after it: the read offset
  then jumps past the committed offset the rebalance sought to, every re-fetched record below it
  is dropped (a dev-level log line, "DROPPED MESSAGE ROFF"), and the records that were waiting in
  the stream's buffer at the rebalance (cleared then) are never processed. The fault tests saw
  fills lost this way, and the partition's commit stuck below the hole.
- An offset can be committed whose table write never reached the changelog (the commit and the
  changelog are not atomic), or a recovery can stop short of the changelog's end (Tansu can
  under-report a partition's end): the table then lags the committed offset.

How. The table says how far each input topic of a partition was handled: the largest offset any
account record applied, the market updates applied (kept with the partition's market state) and
the inputs rejected to the dlq (a small cursor record of the partition). A partition's inputs are
handled strictly in offset order per topic, and their records reach the changelog in that order
(a batch writes its records wave by wave, in input order: streams/accounts/batch.py), so the next
one is that plus one; inputs at or below it are replays, handled as such. An input beyond it
means a hole: the worker reads the hole's records from the broker itself (by assignment, not
through Faust's fetcher, whose read offset is what jumped) and handles each of them in order
before the input, then marks the hole's offsets done in the consumer so that its commits move
past it. Offsets the broker does not hold (deleted
by retention, transaction markers) are simply not there to handle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TopicPartition = tuple[str, int]

CURSOR_KEY = "\x00cursor/{partition}"
"""The portfolio table's key of a partition's cursor record (the last input rejected per topic)."""


class Cursor:
    """The next offset to handle per input topic partition, and the inputs rejected."""

    def __init__(self) -> None:
        self.next: dict[TopicPartition, int] = {}
        self.rejected: dict[int, dict[str, int]] = {}

    def load(self, partition: int, handled: Mapping[str, int]) -> None:
        """A partition's progress from its table state: the last offset handled per topic."""
        for topic, offset in handled.items():
            tp = (topic, partition)
            self.next[tp] = max(self.next.get(tp, 0), offset + 1)

    def load_rejected(self, partition: int, rejected: Mapping[str, int]) -> None:
        """A partition's cursor record (the last input rejected per topic)."""
        self.rejected[partition] = dict(rejected)
        self.load(partition, rejected)

    def reset(self, partitions: Iterable[int]) -> None:
        """Partitions assigned or revoked: their progress is read again from the table."""
        gone = set(partitions)
        for tp in [tp for tp in self.next if tp[1] in gone]:
            del self.next[tp]
        for partition in gone:
            self.rejected.pop(partition, None)

    def check(self, topic: str, partition: int, offset: int) -> int | None:
        """None when an input is the next one or a replay; else the first offset of the hole
        before it (the inputs to read from the broker and handle first)."""
        want = self.next.get((topic, partition), 0)
        return None if offset <= want else want

    def accept(self, topic: str, partition: int, offset: int) -> None:
        """Make an offset the next one (a hole is being filled from the broker, up to it)."""
        tp = (topic, partition)
        self.next[tp] = max(self.next.get(tp, 0), offset)

    def handled(self, topic: str, partition: int, offset: int) -> None:
        """An input was handled (applied, replayed or rejected)."""
        tp = (topic, partition)
        self.next[tp] = max(self.next.get(tp, 0), offset + 1)

    def reject(self, topic: str, partition: int, offset: int) -> dict[str, int]:
        """An input was rejected: the partition's cursor record to save."""
        mine = self.rejected.setdefault(partition, {})
        mine[topic] = max(mine.get(topic, -1), offset)
        return mine
