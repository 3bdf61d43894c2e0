"""Progress of the account inputs (streams/agents/progress.py): the lag gauge, a stall reported
once when records wait and nothing moves for ``stall_after_s``, and once more when it ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.accounts.cursor import Cursor
from streams.agents.metrics import WorkerMetrics
from streams.agents.progress import Progress
from streams.agents.watchdog import format_task_stacks

TP = ("spma.fills", 3)
OTHER = ("spma.fills", 4)


def _gauge(metrics: WorkerMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name, {"topic": TP[0], "partition": str(TP[1])})
    assert value is not None
    return value


def test_a_partition_with_records_waiting_and_nothing_handled_is_reported_stalled_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cursor, metrics = Cursor(), WorkerMetrics()
    progress = Progress(cursor, metrics, stall_after_s=30.0)
    cursor.handled(*TP, 99)  # next: 100
    caplog.set_level(logging.WARNING, logger="spma")
    progress.check({TP: 150}, now=0.0)
    assert _gauge(metrics, "spma_consumer_lag") == 50
    assert _gauge(metrics, "spma_partition_stalled") == 0
    progress.check({TP: 150}, now=31.0)
    progress.check({TP: 160}, now=40.0)
    assert _gauge(metrics, "spma_partition_stalled") == 1
    assert [r.message for r in caplog.records].count(
        "spma.fills:3 stalled: 50 records waiting, none handled for 31 s"
    ) == 1
    cursor.handled(*TP, 120)
    progress.check({TP: 160}, now=45.0)
    assert _gauge(metrics, "spma_partition_stalled") == 0
    assert _gauge(metrics, "spma_consumer_lag") == 39
    assert caplog.records[-1].message == "spma.fills:3 moving again"


def test_a_partition_caught_up_is_never_stalled() -> None:
    cursor, metrics = Cursor(), WorkerMetrics()
    progress = Progress(cursor, metrics, stall_after_s=30.0)
    cursor.handled(*TP, 149)
    for now in (0.0, 100.0, 1000.0):
        progress.check({TP: 150}, now=now)
    assert _gauge(metrics, "spma_partition_stalled") == 0
    assert _gauge(metrics, "spma_consumer_lag") == 0


def test_market_inputs_count_and_a_lost_partition_takes_its_series_along() -> None:
    cursor, metrics = Cursor(), WorkerMetrics()
    progress = Progress(cursor, metrics, stall_after_s=30.0)
    prices = ("spma.oracle-prices", 3)
    progress.done(*prices, 40)  # the market agent handled offset 40: next 41
    progress.check({TP: 10, prices: 45}, now=0.0)
    labels = {"topic": prices[0], "partition": "3"}
    assert metrics.registry.get_sample_value("spma_consumer_lag", labels) == 4
    progress.forget({3})
    for name in ("spma_consumer_lag", "spma_partition_stalled"):
        assert metrics.registry.get_sample_value(name, labels) is None
        assert metrics.registry.get_sample_value(name, {"topic": TP[0], "partition": "3"}) is None


async def stalls_checked_on_the_loop(progress: Progress, cursor: Cursor) -> None:
    """Two partitions' stalls and two more checks of them, on a running loop (as the worker's
    timer)."""
    cursor.handled(*TP, 99)
    cursor.handled(*OTHER, 9)
    for now in (0.0, 31.0, 40.0):
        progress.check({TP: 150, OTHER: 20}, now=now)


def test_a_stall_start_carries_the_asyncio_tasks_stacks_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cursor, metrics = Cursor(), WorkerMetrics()
    progress = Progress(cursor, metrics, stall_after_s=30.0, task_stacks=format_task_stacks)
    caplog.set_level(logging.WARNING, logger="spma")
    asyncio.run(stalls_checked_on_the_loop(progress, cursor))
    stalls = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalls) == 2
    first, _, tasks = stalls[0].partition("\n")
    assert first == "spma.fills:3 stalled: 50 records waiting, none handled for 31 s"
    assert tasks.startswith("asyncio tasks: 1") and "stalls_checked_on_the_loop" in tasks
    assert stalls[1] == "spma.fills:4 stalled: 10 records waiting, none handled for 31 s"


def test_records_that_came_before_the_first_check_count_from_where_the_partition_resumed() -> None:
    """Deposits landed between the assignment and the first check, and none was handled: they
    are behind the committed offset the partition resumed from (the end first seen would hide
    them, and a stalled worker said nothing)."""
    progress = Progress(Cursor(), WorkerMetrics(), stall_after_s=30.0)
    tp = ("spma.collateral", 2)
    progress.check({tp: 25}, now=0.0, starts={tp: 0})
    assert tp not in progress.stalled
    progress.check({tp: 25}, now=31.0, starts={tp: 0})
    assert tp in progress.stalled
    without = Progress(Cursor(), WorkerMetrics(), stall_after_s=30.0)
    without.check({tp: 25}, now=0.0)
    without.check({tp: 25}, now=31.0)
    assert tp not in without.stalled  # what the first check's end hid


def test_a_stall_whose_stacks_are_left_out_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """The worker leaves the stacks out while the broker is down (the outage explains the
    stall) and within ten minutes of the last dump: the warning is then its one line."""
    progress = Progress(Cursor(), WorkerMetrics(), stall_after_s=30.0, task_stacks=lambda: "")
    tp = ("spma.market-broadcast", 1)
    with caplog.at_level(logging.WARNING, logger="spma"):
        progress.check({tp: 12}, now=0.0, starts={tp: 0})
        progress.check({tp: 12}, now=30.0, starts={tp: 0})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "spma.market-broadcast:1 stalled: 12 records waiting, none handled for 30 s"
