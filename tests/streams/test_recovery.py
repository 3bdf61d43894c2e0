"""A table checked against its changelog before use (streams/agents/recovery.py), on a real
broker: a table that lacks the changelog's last writes (a recovery cut short) is caught up from the
changelog, key by key, and the catch-up is counted; a table that matches is left as it is."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from infra.settings import Settings
from streams.agents.recovery import RecoveryCheck
from tests.streams.raw_topic import write_topic

pytestmark = pytest.mark.broker


@dataclass
class Changelog:
    """The table's changelog topic, as Faust's Topic names it."""

    name: str

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class Table:
    """A Faust table's surface the check uses: get, the store's data, the changelog topic."""

    changelog_topic: Changelog
    data: dict[str, bytes] = field(default_factory=dict)

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)


def _changelog(settings: Settings, name: str, writes: list[tuple[int, str, bytes | None]]) -> None:
    """A two-partition changelog topic with the writes (partition, key, value; None deletes)."""
    write_topic(settings, name, 2, [(p, orjson.dumps(key), value) for p, key, value in writes])


def test_a_table_behind_its_changelog_is_caught_up_before_use(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    name = f"{unique_prefix}changelog"
    writes = [(0, "BTC", b"1"), (0, "ETH", b"1"), (1, "SOL", b"1"), (0, "BTC", b"2")]
    _changelog(settings, name, [*writes, (0, "ETH", None), (1, "SOL", b"2")])
    table = Table(Changelog(name), {"BTC": b"1", "ETH": b"1", "SOL": b"1"})  # cut short
    counter = Counter("catchup", "keys", registry=CollectorRegistry())
    check = RecoveryCheck(settings, table, counter)
    check.ensure(0, held={0, 1})
    assert table.data == {"BTC": b"2", "SOL": b"2"}
    assert counter._value.get() == 3  # BTC, ETH (deleted) and SOL
    assert check.checked == {0, 1}
    table.data["BTC"] = b"stale"
    check.ensure(0)  # checked once per assignment
    assert table.data["BTC"] == b"stale"
    check.forget({0})
    check.ensure(0)
    assert table.data["BTC"] == b"2" and counter._value.get() == 4


def test_a_table_that_matches_its_changelog_is_left_alone(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix)
    name = f"{unique_prefix}changelog"
    _changelog(settings, name, [(0, "BTC", b"1"), (1, "SOL", b"1"), (0, "BTC", b"2")])
    table = Table(Changelog(name), {"BTC": b"2", "SOL": b"1"})
    counter = Counter("catchup", "keys", registry=CollectorRegistry())
    RecoveryCheck(settings, table, counter).ensure(1, held={0})
    assert table.data == {"BTC": b"2", "SOL": b"1"} and counter._value.get() == 0
