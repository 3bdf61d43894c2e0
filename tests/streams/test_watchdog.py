"""The event loop's watchdog (streams/agents/watchdog.py): a loop blocked by a synchronous call
is reported once, with the stack that blocks it, and once more when it answers again; a loop
never blocked is not reported; the asyncio tasks' stacks show where each task waits."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from streams.agents.metrics import WorkerMetrics
from streams.agents.watchdog import LoopWatchdog, format_task_stacks


def blocking_call_under_test() -> None:
    """A synchronous call that holds the event loop."""
    time.sleep(2.0)


async def run_watched(watchdog: LoopWatchdog, block: bool) -> None:
    """Run the loop ~1 s, block it 2 s (when asked), then run it ~2.5 s more."""
    watchdog.start()
    try:
        await asyncio.sleep(1.0)
        if block:
            blocking_call_under_test()
        await asyncio.sleep(2.5)
    finally:
        watchdog.stop()


def spma_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages of the warnings logged on the spma logger."""
    return [
        r.getMessage() for r in caplog.records if r.name == "spma" and r.levelno >= logging.WARNING
    ]


def test_a_blocked_loop_is_reported_once_with_the_blocking_stack_then_answering_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="spma")
    metrics = WorkerMetrics()
    watchdog = LoopWatchdog(blocked_after_s=0.5, observe=metrics.loop_blocked.observe)
    asyncio.run(run_watched(watchdog, block=True))
    warnings = spma_warnings(caplog)
    blocked = [m for m in warnings if m.startswith("event loop blocked for")]
    again = [m for m in warnings if m.startswith("event loop answering again after")]
    assert len(blocked) == 1 and len(again) == 1, warnings
    assert "blocking_call_under_test" in blocked[0]
    assert "(event loop)" in blocked[0]
    assert warnings.index(blocked[0]) < warnings.index(again[0])
    assert 1.5 <= float(again[0].split()[-2]) <= 3.5
    assert watchdog.longest_block_s >= 1.5
    assert metrics.registry.get_sample_value("spma_event_loop_blocked_seconds_count", {}) >= 2
    assert watchdog.thread is None  # stopped and joined


def test_a_loop_never_blocked_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="spma")
    watchdog = LoopWatchdog(blocked_after_s=0.5)
    asyncio.run(run_watched(watchdog, block=False))
    assert spma_warnings(caplog) == []
    assert watchdog.longest_block_s < 0.5


async def waiting_for_the_event(event: asyncio.Event) -> None:
    """A task that waits on an event."""
    await event.wait()


async def task_stacks_while_one_waits() -> str:
    """The task stacks while a task waits on an event."""
    event = asyncio.Event()
    task = asyncio.create_task(waiting_for_the_event(event), name="the-waiter")
    await asyncio.sleep(0.01)
    try:
        return format_task_stacks()
    finally:
        event.set()
        await task


def test_task_stacks_show_where_each_task_waits() -> None:
    text = asyncio.run(task_stacks_while_one_waits())
    assert text.startswith("asyncio tasks: 2")
    waiter = text[text.index("Task 'the-waiter'") :]
    assert "waiting_for_the_event" in waiter
    assert "in wait" in waiter  # asyncio.Event.wait, which it awaits
    assert "waits on" in waiter


async def many_sleepers(count: int) -> str:
    """The task stacks, limited, with ``count`` sleeping tasks."""
    tasks = [asyncio.create_task(asyncio.sleep(10)) for _ in range(count)]
    await asyncio.sleep(0)
    try:
        return format_task_stacks(max_tasks=5, max_frames=1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_task_stacks_are_limited() -> None:
    text = asyncio.run(many_sleepers(10))
    assert text.count("\nTask ") == 5
    assert text.endswith("... 6 more tasks")


def test_task_stacks_follow_awaits_through_wrappers() -> None:
    """An agent awaited through an object's ``__await__`` (as Faust runs its actors) and an
    ``async for`` step both show the frames they hide."""

    class Actor:
        def __init__(self, coro: Any) -> None:
            self.coro = coro

        def __await__(self) -> Any:
            return self.coro.__await__()

    async def agent_body(event: asyncio.Event) -> None:
        async for _ in ticks(event):
            pass

    async def ticks(event: asyncio.Event) -> Any:
        await event.wait()
        yield 1

    async def run_actor(event: asyncio.Event) -> None:
        await Actor(agent_body(event))

    async def main() -> str:
        event = asyncio.Event()
        task = asyncio.create_task(run_actor(event))
        await asyncio.sleep(0.05)
        text = format_task_stacks()
        event.set()
        await task
        return text

    text = asyncio.run(main())
    assert "run_actor" in text and "agent_body" in text and "ticks" in text
