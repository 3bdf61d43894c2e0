"""A watchdog of the worker's event loop: a thread that logs, once per episode, every thread's
stack when the loop has not run for ``blocked_after_s`` (a synchronous call that blocks it hangs
the worker silently while its consumer still heartbeats), and the asyncio tasks' stacks."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("spma")

TICK_EVERY_S = 1.0
"""How often the loop ticks, and the thread looks at the last tick, at most (a quarter and a half
of ``blocked_after_s`` when that is shorter, so that a loop that runs is never late enough)."""
MAX_TASKS = 40
"""Most asyncio tasks whose stacks a task report shows."""
MAX_FRAMES = 20
"""Most frames shown of one task's stack."""
FRAME_ATTRS = ("cr_frame", "gi_frame", "ag_frame")
"""Where a coroutine, a generator or an async generator keeps its frame."""
AWAIT_ATTRS = ("cr_await", "gi_yieldfrom", "ag_await")
"""Where each keeps what it awaits."""


class LoopWatchdog:
    """Ticks on the event loop and, from a daemon thread, reports the loop blocked and answering
    again, each once per episode; ``longest_block_s``: the latest a tick ran past its time."""

    def __init__(
        self, blocked_after_s: float = 10.0, observe: Callable[[float], None] | None = None
    ) -> None:
        self.blocked_after_s = blocked_after_s
        self.observe = observe  # each tick's delay past its time (a histogram's observe)
        self.tick_every_s = min(TICK_EVERY_S, blocked_after_s / 4)
        self.check_every_s = min(TICK_EVERY_S, blocked_after_s / 2)
        self.longest_block_s = 0.0
        self.last_tick = time.monotonic()
        self.last_gap = (self.last_tick, self.last_tick)  # the last long silence: its ticks
        self.stuck_at: float | None = None  # the last tick before the episode being reported
        self.loop_thread = threading.get_ident()
        self.handle: asyncio.TimerHandle | None = None
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start ticking on the running loop (call it from a coroutine of that loop) and
        watching from a new thread (a watchdog started before is stopped first)."""
        self.stop()
        loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.last_tick = time.monotonic()
        self.stuck_at = None
        self.stopped = threading.Event()
        self.handle = loop.call_later(self.tick_every_s, self.tick, loop)
        self.thread = threading.Thread(target=self.watch, name="spma-loop-watchdog", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop ticking and end the thread (call it from the loop's thread)."""
        if self.handle is not None:
            self.handle.cancel()
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=self.check_every_s + 1.0)
            self.thread = None

    def tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop: the time it ran, how late, and the next tick."""
        now = time.monotonic()
        late = max(0.0, now - self.last_tick - self.tick_every_s)
        self.longest_block_s = max(self.longest_block_s, late)
        if self.observe is not None:
            self.observe(late)
        if now - self.last_tick >= self.blocked_after_s:
            self.last_gap = (self.last_tick, now)  # before last_tick: the thread reads it after
        self.last_tick = now
        if not self.stopped.is_set():
            self.handle = loop.call_later(self.tick_every_s, self.tick, loop)

    def watch(self) -> None:
        """The thread: look at the last tick every ``check_every_s`` until stopped."""
        while not self.stopped.wait(self.check_every_s):
            self.check(time.monotonic())

    def check(self, now: float) -> None:
        """Report an episode's start once, when the loop has been silent too long, and its end
        once, when it ticked again."""
        last = self.last_tick
        if self.stuck_at is None and now - last >= self.blocked_after_s:
            self.stuck_at = last
            log.warning("%s", blocked_report(now - last, self.loop_thread))
        elif self.stuck_at is not None and last != self.stuck_at:
            start, end = self.last_gap
            silent = end - start if start == self.stuck_at else last - self.stuck_at
            self.stuck_at = None
            log.warning("event loop answering again after %.1f s", silent)


def blocked_report(silent_s: float, loop_thread: int) -> str:
    """The blocked warning: how long, then the loop thread's stack and every other thread's
    (the watchdog's own left out)."""
    frames = sys._current_frames()
    names = {t.ident: t.name for t in threading.enumerate()}
    others = [i for i in frames if i not in (loop_thread, threading.get_ident())]
    lines = [f"event loop blocked for {silent_s:.1f} s so far (no tick ran on it); thread stacks:"]
    for ident in [loop_thread, *others] if loop_thread in frames else others:
        role = " (event loop)" if ident == loop_thread else ""
        lines.append(f'Thread "{names.get(ident, ident)}"{role}:')
        lines.append("".join(traceback.format_stack(frames[ident])).rstrip())
    return "\n".join(lines)


def format_task_stacks(
    loop: asyncio.AbstractEventLoop | None = None,
    max_tasks: int = MAX_TASKS,
    max_frames: int = MAX_FRAMES,
) -> str:
    """The stacks of the loop's asyncio tasks (at most ``max_tasks``, ``max_frames`` each), down
    the chain of awaits to where each waits; call it on the loop (the running one unless given)."""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    lines = [f"asyncio tasks: {len(tasks)}"]
    lines += [task_stack(task, max_frames) for task in tasks[:max_tasks]]
    if len(tasks) > max_tasks:
        lines.append(f"... {len(tasks) - max_tasks} more tasks")
    return "\n".join(lines)


def task_stack(task: asyncio.Task[Any], max_frames: int) -> str:
    """One task's stack: its coroutine's frame and those it awaits (``Task.get_stack`` shows only
    the first), then what the innermost awaits."""
    frames, awaited = await_chain(task.get_coro(), max_frames)
    stack = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
    text = "".join(stack.format()).rstrip()
    waits = f"\n  waits on {repr(awaited)[:160]}" if awaited is not None else ""
    return f"Task {task.get_name()!r}:\n{text}{waits}"


def await_chain(coro: object, max_frames: int) -> tuple[list[FrameType], object]:
    """The frames of a coroutine (or generator) and of those it awaits, outermost first, and the
    object the innermost awaits when it is no coroutine (a future: None when there is none)."""
    frames: list[FrameType] = []
    while coro is not None and len(frames) < max_frames:
        attr = next((a for a in FRAME_ATTRS if hasattr(coro, a)), None)
        if attr is None:
            wrapped = unwrap(coro)
            if wrapped is None:
                return frames, coro  # a future, or another awaitable
            coro = wrapped
            continue
        frame = getattr(coro, attr)
        if frame is None:  # finished
            break
        frames.append(frame)
        coro = next((getattr(coro, a) for a in AWAIT_ATTRS if hasattr(coro, a)), None)
    return frames, None


WRAPPERS = ("coroutine_wrapper", "async_generator_asend", "async_generator_athrow")
"""What an ``await`` on an object with ``__await__`` or an ``async for`` step awaits: they hide
the coroutine or async generator they run (Faust's agents are awaited through them)."""


def unwrap(awaited: object) -> object | None:
    """The coroutine or async generator a wrapper runs (found among the objects it refers to:
    the wrappers expose no attribute for it); None for anything else."""
    if type(awaited).__name__ not in WRAPPERS:
        return None
    inner = [o for o in gc.get_referents(awaited) if any(hasattr(o, a) for a in FRAME_ATTRS)]
    return inner[0] if inner else None
