"""Held input partitions never fetched while records wait in them: found after a while, once
per assignment, and put back in the set Faust's consumer fetches (on Faust's own consumer)."""

from __future__ import annotations

import logging

import faust
import pytest
from faust.types import TP

from streams.agents.private import fetch_view, resume_fetching
from streams.agents.unfetched import Unfetched

FILLS = ("spma.fills", 3)
MARKS = ("spma.oracle-prices", 0)


def test_a_partition_never_fetched_with_records_waiting_is_due_after_the_window() -> None:
    unfetched = Unfetched(resume_after_s=10.0)
    held = [FILLS, MARKS]
    ends = {FILLS: 25, MARKS: 4}
    starts = {FILLS: 0, MARKS: 4}  # the marks partition holds nothing past where it resumed
    assert unfetched.due(held, {}, ends, starts, now=0.0) == []
    assert unfetched.due(held, {}, ends, starts, now=9.9) == []
    assert unfetched.due(held, {}, ends, starts, now=10.0) == [FILLS]


def test_fetched_or_empty_partitions_are_never_due() -> None:
    unfetched = Unfetched(resume_after_s=1.0)
    held = [FILLS]
    assert unfetched.due(held, {FILLS: 25}, {FILLS: 25}, {}, now=0.0) == []  # the consumer saw it
    assert unfetched.due(held, {FILLS: 25}, {FILLS: 25}, {}, now=5.0) == []
    assert unfetched.due(held, {}, {FILLS: 0}, {}, now=10.0) == []  # nothing at the broker
    assert unfetched.due([], {}, {FILLS: 9}, {}, now=20.0) == []  # not held


def test_a_partition_fetched_meanwhile_starts_its_window_over() -> None:
    unfetched = Unfetched(resume_after_s=10.0)
    assert unfetched.due([FILLS], {}, {FILLS: 5}, {}, now=0.0) == []
    assert unfetched.due([FILLS], {FILLS: 5}, {FILLS: 5}, {}, now=8.0) == []  # fetched
    assert unfetched.due([FILLS], {}, {FILLS: 6}, {}, now=12.0) == []  # unseen again: from 12
    assert unfetched.due([FILLS], {}, {FILLS: 6}, {}, now=22.0) == [FILLS]


def test_each_partition_is_reported_and_resumed_once_per_assignment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unfetched = Unfetched(resume_after_s=0.0)
    with caplog.at_level(logging.WARNING, logger="spma"):
        for tp in unfetched.due([FILLS], {}, {FILLS: 5}, {}, now=1.0):
            unfetched.report(tp, 5, "active: no, paused: yes, buffer full: no")
        assert unfetched.due([FILLS], {}, {FILLS: 5}, {}, now=2.0) == []
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "spma.fills:3: not fetched since its assignment, 5 records waiting (active: no, "
        "paused: yes, buffer full: no); resuming its fetch"
    ]
    unfetched.forget()  # a rebalance: a new assignment
    assert unfetched.due([FILLS], {}, {FILLS: 5}, {}, now=3.0) == [FILLS]


def test_resuming_puts_a_partition_back_in_fausts_fetch_set() -> None:
    """On Faust's own consumer (no broker needed): a partition paused, or out while its buffer
    was full, is fetched again."""
    app = faust.App("spma-test-unfetched", broker="kafka://127.0.0.1:1", autodiscover=False)
    consumer = app.consumer
    paused, full = TP(*FILLS), TP(*MARKS)
    consumer.pause_partitions({paused})
    consumer._buffered_partitions.add(full)
    assert fetch_view(app, *FILLS) == "active: no, paused: yes, buffer full: no"
    assert fetch_view(app, *MARKS) == "active: no, paused: no, buffer full: yes"
    resume_fetching(app, [FILLS, MARKS])
    assert fetch_view(app, *FILLS) == "active: yes, paused: no, buffer full: no"
    assert fetch_view(app, *MARKS) == "active: yes, paused: no, buffer full: no"
