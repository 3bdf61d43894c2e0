"""Recovery checked, not assumed: before a worker computes anything from its partitions of a
table (account partitions' processors, the fund's state), the tail of each partition's changelog
is read from the broker and each key's last value there compared with the table's. A table
behind its changelog (a recovery cut short because the broker reported an end short of what it
had acknowledged, as Tansu can) is caught up from the whole changelog partition before it is
used, so no status, order, claim or candidate is computed from a table that lacks records.

The check reads every partition the worker holds in one pass (about half a second) and blocks
the event loop meanwhile, once per assignment: an agent awaiting it in the middle of a batch was
seen to stop Faust's batched stream (``take_events``) from delivering anything again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson

from infra.settings import Settings
from streams.kafka_io import Received, read_tails

log = logging.getLogger("spma")

TAIL = 256
"""Records of each changelog partition's tail compared with the table (the latest writes: a
recovery that stopped short misses these first)."""


def latest(records: list[Received]) -> dict[int, dict[str, bytes | None]]:
    """Each partition's keys with their last value in some changelog records (None: deleted)."""
    found: dict[int, dict[str, bytes | None]] = {}
    for m in records:
        if m.key is not None:
            found.setdefault(m.partition, {})[str(orjson.loads(m.key))] = m.value
    return found


def behind(table: Any, values: dict[str, bytes | None]) -> list[str]:
    """The keys whose value in the table is not the changelog's."""
    return [k for k, v in values.items() if table.get(k) != v]


class RecoveryCheck:
    """Checks a table's partitions once per assignment, before they are used."""

    def __init__(self, settings: Settings, table: Any, counter: Any = None) -> None:
        self.settings = settings
        self.table = table
        self.counter = counter  # spma_table_catchup_keys_total of the table
        self.checked: set[int] = set()

    def topic(self) -> str:
        """The table's changelog topic."""
        return str(self.table.changelog_topic.get_topic_name())

    def ensure(self, partition: int, held: Iterable[int] = ()) -> None:
        """The partition (with the other ``held`` ones not checked yet, in the same pass)
        matches its changelog's tail, caught up from the changelog first where it did not."""
        if partition in self.checked:
            return
        todo = {partition, *held} - self.checked
        topic = self.topic()
        tails = latest(read_tails(self.settings, topic, todo, TAIL))
        stale = {p: keys for p, values in tails.items() if (keys := behind(self.table, values))}
        if stale:
            whole = latest(read_tails(self.settings, topic, stale))
            for p, values in whole.items():
                self.catch_up(topic, p, values, len(stale[p]))
        self.checked |= todo

    def catch_up(self, topic: str, partition: int, values: dict[str, bytes | None], n: int) -> None:
        """Write into the store itself (no changelog: these are the changelog's own writes) each
        key whose table value differs from the changelog's last."""
        fixed = behind(self.table, values)
        for key in fixed:
            if values[key] is None:
                self.table.data.pop(key, None)
            else:
                self.table.data[key] = values[key]
        if self.counter is not None:
            self.counter.inc(len(fixed))
        log.warning(
            "%s:%s: the table lacked %s of the changelog's last writes; caught up %s keys from "
            "the changelog before using it",
            topic,
            partition,
            n,
            len(fixed),
        )

    def forget(self, partitions: set[int]) -> None:
        """Revoked or reassigned partitions are checked again on their next use."""
        self.checked.difference_update(partitions)
