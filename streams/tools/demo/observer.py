"""What the demo watches: the engine's outputs, tallied as they arrive, and a timeline.

A consumer on the output topics keeps each account's last and worst status, counts calls,
orders, fund events and ADL orders, follows the fund's balance and the event time the outputs have
reached, and records a timeline point (prices, accounts by state, the accounts that were in each
state since the last point, fund balance) whenever the scenario asks, for the live view and the
report. It reads the fills topic too, for the accounts' positions (streams/tools/demo/positions.py),
without counting fills as outputs. It can tell how many records it has yet to read.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import OFFSET_INVALID, TopicPartition

from infra.settings import Settings
from streams.codec import AvroCodec, CodecError
from streams.kafka_io import make_consumer, received
from streams.records import Fill, InsuranceFundEvent, MarginStatus
from streams.tools.demo.positions import FillLedger, row_key
from streams.topics.catalog import Topic

WATCHED = (
    Topic.FILLS,  # for positions only: not an output
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
    entered: dict[str, int] = field(default_factory=dict)
    """Accounts that had a status in each state since the previous point (a LIQUIDATION that a
    fill cleared within the step shows here, not in ``states``)."""


@dataclass
class Observer:
    """A consumer of the outputs and the tallies built from them."""

    settings: Settings
    codec: AvroCodec
    last: dict[str, MarginStatus] = field(default_factory=dict)
    worst: dict[str, MarginStatus] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    fund_balance: float = 0.0
    records: int = 0  # output records read, decodable or not
    event_time: datetime | None = None  # the latest event time among them
    timeline: list[TimelinePoint] = field(default_factory=list)
    ledger: FillLedger = field(default_factory=FillLedger)
    since_mark: dict[str, set[str]] = field(default_factory=dict)  # state -> accounts

    def __post_init__(self) -> None:
        self.consumer = make_consumer(
            self.settings, f"spma-demo-{uuid.uuid4().hex[:8]}", {"session.timeout.ms": 6000}
        )
        self.consumer.subscribe([self.settings.topic(t) for t in WATCHED])
        # The partitions' ends, asked on a client of their own: on the subscribed one each query
        # would queue behind its pending fetch (half a second a partition).
        self.ends = make_consumer(self.settings, f"spma-demo-ends-{uuid.uuid4().hex[:8]}")

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

    def behind(self, timeout_s: float = 10.0) -> int:
        """Output records already in the watched topics that this consumer has yet to read."""
        parts = self.consumer.assignment()
        if not parts:
            return 0
        left = 0
        for tp in self.consumer.position(parts):
            low, high = self.ends.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=timeout_s
            )
            left += max(0, high - (low if tp.offset == OFFSET_INVALID else tp.offset))
        return left

    def _take(self, topic: str, value: bytes | None) -> None:
        """Tally one output record (a fill goes to the ledger only)."""
        if topic == Topic.FILLS:
            self._take_fill(value)
            return
        self.records += 1
        try:
            record = self.codec.decode(topic, value)
        except CodecError:
            self.counts["undecodable"] += 1
            return
        self.counts[topic] += 1
        self._follow_event_time(topic, getattr(record, "ts", None))
        if isinstance(record, MarginStatus):  # the margin-status topic's only record
            self._take_status(record)
        elif isinstance(record, InsuranceFundEvent):  # the insurance-fund topic's only record
            self.fund_balance = float(record.balance_after)
            self.counts[f"fund {record.kind.value}"] += 1

    def _take_fill(self, value: bytes | None) -> None:
        """A fill for the positions' ledger (an undecodable one is the dlq's business)."""
        try:
            fill = self.codec.decode(Topic.FILLS, value)
        except CodecError:
            return
        if isinstance(fill, Fill):
            self.ledger.add(fill)

    def _take_status(self, status: MarginStatus) -> None:
        """An account's last and worst status, and its state since the last timeline point."""
        key = row_key(status.account, status.sub_account)
        self.last[key] = status
        worst = self.worst.get(key)
        if worst is None or severity(status) < severity(worst):
            self.worst[key] = status
        self.since_mark.setdefault(status.state.value, set()).add(key)

    def _follow_event_time(self, topic: str, ts: object) -> None:
        """Advance the outputs' event time (a dlq record's stamp may be the wall clock's)."""
        if topic == Topic.DLQ or not isinstance(ts, datetime):
            return
        if self.event_time is None or ts > self.event_time:
            self.event_time = ts

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
            {state: len(accounts) for state, accounts in sorted(self.since_mark.items())},
        )
        self.since_mark = {}
        self.timeline.append(point)
        return point

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()
        self.ends.close()


def severity(status: MarginStatus) -> tuple[int, float]:
    """Deficits first (largest first), then the lowest MM ratio (inf with no requirement)."""
    if status.equity < 0:
        return (0, float(status.equity))
    return (1, float(status.equity_mm / status.mm) if status.mm > 0 else float("inf"))
