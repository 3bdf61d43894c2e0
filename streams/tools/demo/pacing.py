"""The demo's waits: each step goes on when the pipeline has done its part, however long it takes.

The scenario moves to its next step when the workers have committed every input (so they have read
the step's market in event time), the simulator has executed every order they sent and had none for
a moment, and the observer has read every output already written; at the start, when every seeded
account has a status and the seed's orders are filled. Nothing here counts wall-clock budgets: while
it waits the pacer shows the stall detector what the pipeline has done (outputs read, the event time
they reached, inputs left to commit, orders executed), and fails the run, naming the phase, what it
waited for and how far it got, the worker's log and the report folder, only when that stopped
changing or the worker died.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from streams.tools.demo.failure import DemoFailed, log_tail
from streams.tools.demo.observer import Observer
from streams.tools.demo.stall import StallDetector, Stalled
from streams.tools.simulator.runner import SimulatorLoop

LAG_EVERY_S = 1.0
"""How often a settling step asks the broker what the workers have yet to commit."""


@dataclass(frozen=True)
class Progress:
    """What the pipeline has done, as the demo sees it: any change is progress."""

    outputs: int  # output records read
    event_time: datetime | None  # the latest event time among them
    lag: int | None  # inputs the workers have yet to commit, as last asked (None: unknown)
    orders: int  # orders and fills the simulator has handled


@dataclass
class Pacer:
    """The demo's waits on the worker, the simulator and the observer, under a stall detector."""

    observer: Observer
    loop: SimulatorLoop
    worker: subprocess.Popen[bytes]
    detector: StallDetector
    logs: list[Path]
    report: Path
    phase: str = "start"
    lag: int | None = None
    until: datetime | None = None  # the event time the current step reaches
    unread: int = 0
    longest_pause_phase: str = ""  # where the pipeline stood still longest

    def caught_up(self) -> None:
        """Until the workers have committed every input (they start, join, recover and read)."""
        while (lag := self.loop.lag()) != 0:
            self.lag = lag
            self.observer.poll(0.1)
            self._tick(self._committing)
        self.lag = 0

    def statuses(self, accounts: set[str]) -> None:
        """Until every account has a status."""
        while accounts - self.observer.last.keys():
            self.observer.poll(0.5)
            self._tick(lambda: self._statuses(accounts))

    def settle(self, until: datetime | None, quiet_s: float = 1.5) -> None:
        """Until the simulator has had no order for quiet_s, the workers have committed every
        input (so their event time reached ``until``, the step's), the simulator has executed
        every order they sent, and every output is read.

        The next step's prices go out only then: a fill that met the next step's market instead
        of its own made the same seed give different liquidations and fund balances."""
        self.until = until
        quiet_since = looked = time.monotonic()
        while True:
            if self.loop.step(0.3):
                quiet_since = time.monotonic()
            self.observer.poll(0.1)
            now = time.monotonic()
            if now - quiet_since >= quiet_s and now - looked >= LAG_EVERY_S:
                looked = now
                self.lag = self.loop.lag()
                if self.lag == 0 and self.loop.orders_lag() == 0:
                    break
            self._tick(self._settling)
        self.read_outputs()

    def read_outputs(self) -> None:
        """Until the observer has read every output record already written."""
        self.observer.poll(0.3)
        while (unread := self.observer.behind()) > 0:
            self.unread = unread
            self.observer.poll(0.3)
            self._tick(self._reading)

    def drain(self, quiet_s: float = 2.0) -> None:
        """Until no output came for quiet_s (the last statuses after the last fills)."""
        while self.observer.poll(quiet_s):
            self._tick(lambda: "waiting for the last outputs to stop")

    def failed(self, reason: str) -> DemoFailed:
        """The failure of the current phase, naming the worker's log and the report folder."""
        return DemoFailed(self.phase, reason, self.logs, self.report)

    def progress(self) -> Progress:
        """A snapshot of what the pipeline has done."""
        o = self.observer
        return Progress(o.records, o.event_time, self.lag, sum(self.loop.stats.values()))

    def _tick(self, waiting: Callable[[], str]) -> None:
        """Fail when the worker died or nothing moved for the stall window; else note progress."""
        if self.worker.poll() is not None:
            tail = log_tail(self.logs[0])
            raise self.failed(f"the worker exited with code {self.worker.returncode}:\n{tail}")
        longest = self.detector.longest_idle_s
        self.detector.observe(self.progress())
        if self.detector.longest_idle_s > longest:
            self.longest_pause_phase = self.phase
        try:
            self.detector.check(waiting)
        except Stalled as exc:
            raise self.failed(str(exc)) from None

    def _committing(self) -> str:
        """What caught_up waits for."""
        left = "not known yet" if self.lag is None else f"{self.lag:,} to go"
        return f"waiting for the worker to commit every input: {left}"

    def _statuses(self, accounts: set[str]) -> str:
        """What statuses waits for."""
        have = len(accounts & self.observer.last.keys())
        return f"waiting for statuses: {have:,} of {len(accounts):,} accounts"

    def _settling(self) -> str:
        """What settle waits for: inputs, orders and the outputs' event time."""
        left = "unknown" if self.lag is None else f"{self.lag:,}"
        return (
            f"waiting for the step to settle: inputs the worker has yet to commit {left}, "
            f"orders and fills handled {sum(self.loop.stats.values()):,}, outputs at event "
            f"time {clock(self.observer.event_time)} (the step's {clock(self.until)})"
        )

    def _reading(self) -> str:
        """What read_outputs waits for."""
        return f"waiting to read the outputs: {self.unread:,} records unread"


def clock(ts: datetime | None) -> str:
    """An event time as a short UTC clock (or 'none yet')."""
    return "none yet" if ts is None else ts.strftime("%H:%M:%S")
