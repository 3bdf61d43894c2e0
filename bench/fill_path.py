"""The path of one fill through the worker's code, from the account agent's input to its status
queued for sending: the project files it enters, in order, and how often it comes back to a file
it had left (docs/architecture.md quotes the figures). In process, no broker: a seeded partition,
one funded account, one fill; Python's profiler hook follows every call and return.

    python -m bench.fill_path
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.inprocess import Partitions as Seeded
from infra.settings import Settings
from streams import records as r
from streams.accounts.outputs import InputRef
from streams.agents.account_agent import AccountAgent
from streams.agents.clock import Clock
from streams.agents.guard import Guard, Replayed
from streams.agents.metrics import WorkerMetrics
from streams.agents.partitions import Partitions
from streams.agents.sender import Sender
from streams.codec import codec_from_settings
from streams.kafka_io import Received
from streams.topics.catalog import Topic

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "streams", "infra")


@dataclass(frozen=True)
class CallPath:
    """The files a call path entered, in order (consecutive repeats merged)."""

    files: list[str]

    def entered(self) -> int:
        """Distinct files entered."""
        return len(set(self.files))

    def returns(self) -> Counter[str]:
        """For each file, how often the path came back to it after leaving it."""
        seen: set[str] = set()
        back: Counter[str] = Counter()
        for name in self.files:
            if name in seen:
                back[name] += 1
            seen.add(name)
        return back


def project_file(frame: FrameType | None) -> str | None:
    """The project file (relative path) a frame runs in, None outside the project."""
    if frame is None:
        return None
    try:
        rel = Path(frame.f_code.co_filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    return str(rel) if rel.parts[0] in PACKAGES else None


def traced(run: Any) -> CallPath:
    """Run a coroutine factory to completion with every call and return of project code
    recorded as the file execution is in."""
    files: list[str] = []

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        here = project_file(frame if event == "call" else frame.f_back)
        if event in ("call", "return") and here is not None and (not files or files[-1] != here):
            files.append(here)

    sys.setprofile(hook)
    try:
        asyncio.run(run())
    finally:
        sys.setprofile(None)
    return CallPath(files)


def agent() -> tuple[AccountAgent, list[Any]]:
    """An account agent on one seeded partition with one funded account; two fills' events
    (the first warms the codec and the book up: the second's path is the steady one)."""
    settings = Settings()
    codec = codec_from_settings(settings)
    seeded = Seeded.seeded(1)
    proc = seeded.processors[0]
    ts = datetime.now(tz=UTC)
    deposit = r.CollateralTransfer(
        transfer_id="d-path", account="path", asset="USDC", amount=1e6, kind="DEPOSIT", ts=ts
    )
    proc.on_transfer(deposit, InputRef(settings.topic(Topic.COLLATERAL), 0, 0))
    parts = Partitions(settings, {})
    parts.processors[0] = proc
    metrics = WorkerMetrics()
    guard = Guard(settings, codec, None, metrics)
    sender = Sender(settings, None, codec, metrics)  # type: ignore[arg-type]  # never sends here
    acc = AccountAgent(
        settings, codec, seeded.market, parts, sender, guard, Clock(), metrics, lambda: None
    )
    events = []
    for offset in (0, 1):
        fill = r.Fill(
            fill_id=f"f-path-{offset}",
            account="path",
            instrument=seeded.instruments[0],
            side="BUY",
            qty=0.1,
            price=60_000.0,
            fee=0.0,
            liquidity="TAKER",
            ts=ts,
        )
        value = codec.encode(Topic.FILLS, fill)
        events.append(Replayed(Received(settings.topic(Topic.FILLS), 0, offset, b"path", value)))
    return acc, events


def main() -> None:
    """Print the fill's path: files entered, returns, and the files in order."""
    acc, (first, second) = agent()

    async def one(event: Any) -> None:
        await acc.on_input(event)
        acc.settle_waves()

    asyncio.run(one(first))
    path = traced(lambda: one(second))
    back = path.returns()
    print(f"files entered: {path.entered()}; returns to a file already left: {sum(back.values())}")
    print("returns by file: " + ", ".join(f"{f} {n}" for f, n in back.most_common()))
    print("path: " + " > ".join(path.files))


if __name__ == "__main__":
    main()
