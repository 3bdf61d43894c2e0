"""Whether the inputs make progress: for each input partition this worker holds (account, market
and fund inputs), the records behind the end its consumer last saw (the lag) and a stall, when
records wait and none has been handled for ``stall_after_s``. A stall is logged once when it
starts and once when it ends, and shown in ``spma_partition_stalled``; the lag in
``spma_consumer_lag``. The next offset to handle comes from the account partitions' cursor and
from the offsets the market and fund agents handled. A stall's start carries the asyncio tasks'
stacks when the worker passes a formatter of them (streams/agents/watchdog.py), so that a
stalled agent shows where it waits (the first to start in a check only: one dump a check)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping

from streams.accounts.cursor import Cursor
from streams.agents.metrics import WorkerMetrics

log = logging.getLogger("spma")

TopicPartition = tuple[str, int]


class Progress:
    """Watches the next offset to handle of each input partition against its end."""

    def __init__(
        self,
        cursor: Cursor,
        metrics: WorkerMetrics,
        stall_after_s: float,
        task_stacks: Callable[[], str] | None = None,
    ) -> None:
        self.cursor = cursor
        self.task_stacks = task_stacks  # the asyncio tasks' stacks, for a stall's start
        self.stacks_due = False  # whether a stall's start in this check should carry them
        self.handled: dict[TopicPartition, int] = {}  # market and fund inputs: the next offset
        self.metrics = metrics
        self.stall_after_s = stall_after_s
        self.moved: dict[TopicPartition, tuple[int, float]] = {}  # next offset, when it moved
        self.stalled: set[TopicPartition] = set()

    def check(
        self,
        ends: Mapping[TopicPartition, int],
        now: float,
        starts: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """Update lag and stalls from each partition's end offset (``now``: monotonic;
        ``starts``: where a partition with nothing handled since its assignment resumed, the
        group's committed offset; without it, the end first seen, which missed records that
        arrived before the first check)."""
        self.stacks_due = self.task_stacks is not None  # once a check, however many stall
        for tp, end in ends.items():
            nxt = self.cursor.next.get(tp, self.handled.get(tp))
            if nxt is None:  # nothing handled since the assignment yet: where it resumed
                nxt = (starts or {}).get(tp, self.moved.get(tp, (end, now))[0])
            behind = max(0, end - nxt)
            last = self.moved.get(tp)
            if last is None or last[0] != nxt:
                self.moved[tp] = last = (nxt, now)
            self.metrics.lag.labels(*map(str, tp)).set(behind)
            self.report(
                tp, behind > 0 and now - last[1] >= self.stall_after_s, behind, now - last[1]
            )

    def report(self, tp: TopicPartition, stalled: bool, behind: int, idle_s: float) -> None:
        """Log a stall's start and end once each; the gauge."""
        topic, partition = tp
        if stalled and tp not in self.stalled:
            self.stalled.add(tp)
            log.warning(
                "%s:%s stalled: %s records waiting, none handled for %.0f s%s",
                topic,
                partition,
                behind,
                idle_s,
                self.stacks(),
            )
        elif not stalled and tp in self.stalled:
            self.stalled.discard(tp)
            log.warning("%s:%s moving again", topic, partition)
        self.metrics.stalled.labels(topic, str(partition)).set(1 if stalled else 0)

    def stacks(self) -> str:
        """The asyncio tasks' stacks for the first stall to start in a check ('' for others)."""
        if not self.stacks_due or self.task_stacks is None:
            return ""
        self.stacks_due = False
        text = self.task_stacks()  # '' when the worker has reason to leave them out
        return "\n" + text if text else ""

    def done(self, topic: str, partition: int, offset: int) -> None:
        """A market or fund input was handled (account inputs are the cursor's)."""
        self.handled[topic, partition] = offset + 1

    def forget(self, partitions: set[int]) -> None:
        """Revoked or reassigned partitions start over."""
        for tp in [tp for tp in self.moved if tp[1] in partitions]:
            del self.moved[tp]
            self.stalled.discard(tp)
            self.drop_series(tp)
        for tp in [tp for tp in self.handled if tp[1] in partitions]:
            del self.handled[tp]

    def drop_series(self, tp: TopicPartition) -> None:
        """A partition's lag and stall series go with it (another worker reports it now; a
        lost partition's last value must not stay in a sum)."""
        labels = (tp[0], str(tp[1]))
        for gauge in (self.metrics.lag, self.metrics.stalled):
            with contextlib.suppress(KeyError):  # a series never set
                gauge.remove(*labels)
