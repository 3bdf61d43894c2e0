"""The broker's end offsets for partitions the worker's consumer has not fetched: what the
progress check uses so that such a partition shows its lag and, in time, a stall."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from infra.settings import Settings
from streams.accounts.cursor import Cursor
from streams.agents.broker_ends import BrokerEnds
from streams.agents.metrics import WorkerMetrics
from streams.agents.progress import Progress

pytestmark = pytest.mark.broker


def _topic_with(bootstrap: str, name: str, counts: dict[int, int]) -> None:
    """A topic of len(counts) partitions, each holding its count of records."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=len(counts), replication_factor=1)])[
        name
    ].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, n in counts.items():
        for i in range(n):
            producer.produce(name, value=b"x%d" % i, partition=partition)
    assert producer.flush(30) == 0


def test_ends_are_the_brokers_and_an_unknown_partition_is_left_out(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    name = f"{unique_prefix}collateral"
    _topic_with(kafka_bootstrap, name, {0: 3, 1: 0})
    ends = BrokerEnds(Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix))
    try:
        found = ends.ends([(name, 0), (name, 1), (name, 7)])
    finally:
        ends.close()
    assert found == {(name, 0): 3, (name, 1): 0}


def test_a_partition_never_fetched_stalls_on_the_brokers_end() -> None:
    """Seen empty at its assignment, then three records wait and none is handled: a stall once
    the window passes (the end from the broker, as the worker passes it)."""
    progress = Progress(Cursor(), WorkerMetrics(), stall_after_s=30.0)
    tp = ("spma.collateral", 5)
    progress.check({tp: 0}, now=0.0)
    progress.check({tp: 3}, now=10.0)
    assert tp not in progress.stalled
    progress.check({tp: 3}, now=41.0)
    assert tp in progress.stalled
