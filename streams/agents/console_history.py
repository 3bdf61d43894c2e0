"""Accounts by state over time, as one worker samples them for the risk console.

Every ``every_s`` seconds of wall-clock time the worker counts its accounts by state and keeps
the point at the start of its interval (epoch seconds, a multiple of ``every_s``), so that the
points of several workers fall on the same instants and add up (streams/agents/console_merge.py).
The last ``kept`` points are kept (an hour at the default pace); a worker restarted, or given
other partitions by a rebalance, simply counts what it owns from then on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

EVERY_S = 2.0
KEPT = 1800

Point = tuple[float, dict[str, int]]


@dataclass
class StateHistory:
    """The newest samples of accounts by state, one per interval."""

    every_s: float = EVERY_S
    kept: int = KEPT
    clock: Callable[[], float] = time.time
    samples: deque[Point] = field(default_factory=deque)

    def sample(self, states: dict[str, int]) -> None:
        """Keep the counts for the current interval (a second sample in it replaces the first)."""
        at = (self.clock() // self.every_s) * self.every_s
        if self.samples and self.samples[-1][0] == at:
            self.samples.pop()
        self.samples.append((at, dict(states)))
        while len(self.samples) > self.kept:
            self.samples.popleft()

    def points(self) -> list[list[object]]:
        """The samples, oldest first, as JSON-ready [time, counts] pairs."""
        return [[at, counts] for at, counts in self.samples]
