"""Telling a slow pipeline from a stopped one: the demo's only deadline.

On a loaded machine the pipeline is slower, not stuck, so a fixed overall deadline fails runs that
would have finished. The detector is shown the pipeline's progress (any comparable snapshot: output
records read, the event time they reached, inputs committed, orders executed) as the demo waits;
it fails the run only when that snapshot has not changed for a stall window, or when the whole run
passes an absolute cap far above a normal run (so that nothing can hang a CI job). The clock is a
parameter, so the detector is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

STALL_WINDOW_S = 60.0
"""Fail when nothing progressed for this long (a normal step moves within a few seconds)."""

CAP_S = 900.0
"""Fail a run that is still moving after this long (a normal one takes two to four minutes)."""


class Stalled(Exception):
    """The pipeline stopped moving (or the run passed its cap) while the demo waited for it."""

    def __init__(self, waiting: str, idle_s: float, elapsed_s: float, capped: bool) -> None:
        self.waiting = waiting
        self.idle_s = idle_s
        self.elapsed_s = elapsed_s
        self.capped = capped
        super().__init__(self.describe())

    def describe(self) -> str:
        """What it waited for and how long nothing moved (or that the cap was reached)."""
        if self.capped:
            return (
                f"{self.waiting}; still not done after {self.elapsed_s:,.0f} s, "
                "the cap of a whole run"
            )
        return f"{self.waiting}; nothing new for {self.idle_s:,.0f} s"


@dataclass
class StallDetector:
    """Remembers when the pipeline last moved and fails a wait once it has been still too long."""

    window_s: float = STALL_WINDOW_S
    cap_s: float = CAP_S
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    moved: float = field(init=False)
    seen: Hashable = field(init=False, default=None)
    longest_idle_s: float = field(init=False, default=0.0)  # the longest pause so far

    def __post_init__(self) -> None:
        self.started = self.moved = self.clock()

    def observe(self, progress: Hashable) -> bool:
        """Note the pipeline's progress now; True when it changed since the last look."""
        now = self.clock()
        self.longest_idle_s = max(self.longest_idle_s, now - self.moved)
        if progress == self.seen:
            return False
        self.seen = progress
        self.moved = now
        return True

    def idle_s(self) -> float:
        """Seconds since the progress last changed."""
        return self.clock() - self.moved

    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return self.clock() - self.started

    def check(self, waiting: Callable[[], str]) -> None:
        """Raise Stalled, described by ``waiting()`` (what the wait is for and how far it got),
        when nothing moved for the window or the run passed its cap; else return at once."""
        idle, elapsed = self.idle_s(), self.elapsed_s()
        if idle >= self.window_s or elapsed >= self.cap_s:
            raise Stalled(waiting(), idle, elapsed, capped=idle < self.window_s)
