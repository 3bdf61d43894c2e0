"""Input partitions this worker holds but its consumer never fetched since their assignment,
while the broker holds records in them: reported once with Faust's view of the partition, and
their fetching resumed.

Faust fetches only the partitions in its consumer's active set: it pauses each assigned
partition while its tables recover and resumes it after, and takes a partition out while its
stream's buffer is full, putting it back when the buffer drains. A partition left out of the set
(a resume or a drain missed around a rebalance: faust-streaming/faust#166 and #629 describe
partitions never fetched after one) is never read, its records wait for ever, and nothing is
logged: in CI a worker's deposits waited 90 s with a silent log, and a listing never reached a
partition's broadcast."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger("spma")

TopicPartition = tuple[str, int]

RESUME_AFTER_S = 10.0
"""How long a held partition may hold records with none fetched before its fetch is resumed (a
table's recovery pauses its partitions legitimately; it is over well before)."""


class Unfetched:
    """When each held input partition was first seen unfetched with records waiting."""

    def __init__(self, resume_after_s: float = RESUME_AFTER_S) -> None:
        self.resume_after_s = resume_after_s
        self.since: dict[TopicPartition, float] = {}
        self.resumed: set[TopicPartition] = set()

    def due(
        self,
        held: list[TopicPartition],
        seen: Mapping[TopicPartition, int],
        broker_ends: Mapping[TopicPartition, int],
        starts: Mapping[TopicPartition, int],
        now: float,
    ) -> list[TopicPartition]:
        """The partitions to resume: held, never fetched (no end ``seen`` by the consumer), with
        records past where they resumed (``starts``) at the broker, for ``resume_after_s``
        (``now``: monotonic); each once per assignment."""
        waiting = {
            tp for tp in held if tp not in seen and broker_ends.get(tp, 0) > starts.get(tp, 0)
        }
        for tp in [tp for tp in self.since if tp not in waiting]:
            del self.since[tp]
        for tp in waiting:
            self.since.setdefault(tp, now)
        return [
            tp
            for tp in sorted(waiting - self.resumed)
            if now - self.since[tp] >= self.resume_after_s
        ]

    def report(self, tp: TopicPartition, waiting: int, faust_view: str) -> None:
        """Log a partition resumed, once (how many records wait, and how Faust saw it)."""
        self.resumed.add(tp)
        log.warning(
            "%s:%s: not fetched since its assignment, %s records waiting (%s); resuming its fetch",
            *tp,
            waiting,
            faust_view,
        )

    def forget(self) -> None:
        """After a rebalance: every partition starts over."""
        self.since.clear()
        self.resumed.clear()
