"""What the demo watches: the engine's outputs, tallied as they arrive, and a timeline.

A consumer on the output topics keeps each account's last status, counts calls, orders, fund
events and ADL orders, follows the fund's balance, and records a timeline point (prices, accounts
by state, fund balance) whenever the scenario asks, for the live view and the report.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from infra.settings import Settings
from streams.codec import AvroCodec, CodecError
from streams.kafka_io import make_consumer, received
from streams.records import InsuranceFundEvent, MarginStatus
from streams.topics.catalog import Topic

WATCHED = (
    Topic.MARGIN_STATUS,
    Topic.MARGIN_CALLS,
    Topic.LIQUIDATIONS,
    Topic.INSURANCE_FUND,
    Topic.ADL,
    Topic.DLQ,
)


@dataclass
class TimelinePoint:
    """The exchange at one step of the scenario."""

    label: str
    minute: float
    prices: dict[str, float]
    states: dict[str, int]
    fund: float
    liquidations: int
    adl: int


@dataclass
class Observer:
    """A consumer of the outputs and the tallies built from them."""

    settings: Settings
    codec: AvroCodec
    last: dict[str, MarginStatus] = field(default_factory=dict)
    worst: dict[str, MarginStatus] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    fund_balance: float = 0.0
    timeline: list[TimelinePoint] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consumer = make_consumer(
            self.settings, f"spma-demo-{uuid.uuid4().hex[:8]}", {"session.timeout.ms": 6000}
        )
        self.consumer.subscribe([self.settings.topic(t) for t in WATCHED])

    def poll(self, seconds: float) -> int:
        """Read what arrives for a while; how many records came."""
        end, got = time.monotonic() + seconds, 0
        prefix = self.settings.topic_prefix
        while time.monotonic() < end:
            msgs = [m for m in self.consumer.consume(1000, timeout=0.1) if m.error() is None]
            got += len(msgs)
            for m in map(received, msgs):
                self._take(m.topic.removeprefix(prefix), m.value)
        return got

    def _take(self, topic: str, value: bytes | None) -> None:
        """Tally one output record."""
        try:
            record = self.codec.decode(topic, value)
        except CodecError:
            self.counts["undecodable"] += 1
            return
        self.counts[topic] += 1
        if isinstance(record, MarginStatus):  # the margin-status topic's only record
            self.last[record.account] = record
            worst = self.worst.get(record.account)
            if worst is None or severity(record) < severity(worst):
                self.worst[record.account] = record
        elif isinstance(record, InsuranceFundEvent):  # the insurance-fund topic's only record
            self.fund_balance = float(record.balance_after)
            self.counts[f"fund {record.kind.value}"] += 1

    def states(self) -> dict[str, int]:
        """Accounts by their last state."""
        return dict(Counter(s.state.value for s in self.last.values()))

    def mark(self, label: str, minute: float, prices: dict[str, float]) -> TimelinePoint:
        """Record a timeline point now."""
        point = TimelinePoint(
            label,
            minute,
            dict(prices),
            self.states(),
            self.fund_balance,
            self.counts[Topic.LIQUIDATIONS],
            self.counts[Topic.ADL],
        )
        self.timeline.append(point)
        return point

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()


def severity(status: MarginStatus) -> tuple[int, float]:
    """Deficits first (largest first), then the lowest MM ratio (inf with no requirement)."""
    if status.equity < 0:
        return (0, float(status.equity))
    return (1, float(status.equity_mm / status.mm) if status.mm > 0 else float("inf"))
