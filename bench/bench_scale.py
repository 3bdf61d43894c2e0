"""Scale benchmark: `spma scale` moving a worker's 100,000 accounts from 8 account partitions to
16 while deposits keep arriving.

The accounts are seeded as bench/bench_memory.py seeds them (their portfolio table's changelog,
10 positions each, every partition's market state), one `spma worker` restores them, and a
deposit to an account of every partition proves it holds them. Then deposits to random accounts
arrive at a steady pace (a status each) while the scale runs in this process: its total time
(plan to "generation 1 active"), the copy's share of it (read, re-key, write), and the time from
the drain's start (inputs paused) to the first status after the switch: the longest any deposit,
so any account's statuses, waited (the drain, the copy, the worker's restart in generation 1 and
its restore of the 100,000 accounts from the new changelog). Statuses the copy sends again from
the outboxes are copies, not news: they do not shorten it.
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.bench_memory import create_changelog, seed_changelog, wake
from bench.inprocess import Partitions, account_records, market_exchange
from bench.pipeline_kit import PARTITIONS, Pipeline
from bench.report import Row, publish
from streams.scaling.command import scale

ACCOUNTS = 100_000
POSITIONS = 10
TARGET_PARTITIONS = 2 * PARTITIONS
PACE_S = 0.05  # one deposit every 50 ms
RETURN_WAIT_S = 300.0


class Feeder(threading.Thread):
    """Deposits to random accounts at a steady pace until stopped; their keys start 'pace-'."""

    def __init__(self, pipe: Pipeline, accounts: list[str]) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.accounts = accounts
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stopping.is_set():
            account = rng.choice(self.accounts)
            self.pipe.send_raw(self.pipe.deposits([account], 1.0, f"pace{self.sent}"))
            self.sent += 1
            time.sleep(PACE_S)


def run(log_dir: Path) -> dict[str, Any]:
    """Seed, start the worker, wake it, then scale while deposits arrive."""
    pipe = Pipeline.start(log_dir)
    out: dict[str, Any] = {}
    try:
        ex = market_exchange()
        parts = Partitions.seeded(PARTITIONS, ex)
        records = account_records(ACCOUNTS, POSITIONS, parts.instruments, PARTITIONS)
        seed_changelog(pipe, create_changelog(pipe, pipe.app_id), parts, records)
        pipe.exchange = ex
        pipe.start_worker()
        status = pipe.listener(["margin-status"])
        out["wake_rounds"], out["answered"] = wake(pipe, status, records)
        out.update(_scale_while_paced(pipe, status, [r.account for r in records]))
        status.close()
    finally:
        pipe.stop()
    return out


def _scale_while_paced(pipe: Pipeline, status: Any, accounts: list[str]) -> dict[str, Any]:
    """The scale's figures, deposits arriving all along."""
    feeder = Feeder(pipe, accounts)
    feeder.start()
    time.sleep(3.0)  # statuses flowing
    lines: list[tuple[float, str]] = []
    settings = pipe.settings.model_copy(update={"app_id": pipe.app_id})
    started = time.perf_counter()
    scale(settings, TARGET_PARTITIONS, lambda line: lines.append((time.perf_counter(), line)))
    done = time.perf_counter()
    returned = _first_after(status, done, RETURN_WAIT_S)
    feeder.stopping.set()
    feeder.join(10)
    draining = next(t for t, line in lines if "recorded: draining" in line)
    copy = [float(m.group(1)) for _, line in lines if (m := re.search(r"in ([\d.]+) s$", line))]
    return {
        "scale_s": done - started,
        "copy_s": copy[-2] if len(copy) >= 2 else float("nan"),
        "back_s": returned - done,
        "pause_s": returned - draining,
        "deposits": feeder.sent,
        "log": [line for _, line in lines],
    }


def _first_after(status: Any, t: float, timeout_s: float) -> float:
    """The arrival time of the first status after t (perf_counter), waiting for it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        after = [float(at) for _, at in list(status.seen) if at > t]
        if after:
            return min(after)
        time.sleep(0.1)
    return float("nan")


def rows_of(f: dict[str, Any]) -> list[Row]:
    """The table."""
    note = "" if f["answered"] else "not every partition answered before the scale"
    return [
        Row(
            f"scale {ACCOUNTS:,} accounts from {PARTITIONS} to {TARGET_PARTITIONS} partitions",
            f["scale_s"],
            "s",
            ratio=note,
        ),
        Row("  of which the table's copy (read, re-key, write)", f["copy_s"], "s"),
        Row("  first status after the switch, from its end", f["back_s"], "s"),
        Row("longest pause of an account's statuses (drain to first status)", f["pause_s"], "s"),
    ]


def main() -> dict[str, Any]:
    """Run, print the table, write reports/bench_scale.json."""
    with tempfile.TemporaryDirectory(prefix="spma-bench-scale-") as tmp:
        figures = run(Path(tmp))
    publish(
        "scale",
        "scale (one worker, 100,000 accounts, 8 to 16 account partitions while deposits arrive)",
        rows_of(figures),
        {"figures": figures},
    )
    return figures


if __name__ == "__main__":
    main()
