"""The simulator on Kafka: publish a market, execute the orders that come back, publish fills.

``SimulatorLoop.publish`` produces inputs (and follows the market records itself, as a venue
would); ``pump`` consumes liquidation and ADL orders until the topics are quiet, executes each
once on the matching engine and produces the fills, flagged LIQUIDATION or ADL, at the loop's
event time. Every wait is bounded.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import datetime, timedelta

from confluent_kafka import KafkaError, KafkaException

from infra.settings import Settings
from streams.codec import AvroCodec, CodecError, codec_from_settings
from streams.kafka_io import flush, group_lag, make_consumer, make_producer, produce, received
from streams.records import AdlOrder, LiquidationOrder, Record
from streams.tools.simulator.matching import MatchingEngine
from streams.topics.catalog import Topic

COORDINATOR_NOT_READY = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)
"""What a group coordinator answers while it is being elected or loaded: ask again later."""

MARKET_TOPICS = (Topic.ORACLE_PRICES, Topic.BOOK_DEPTH, Topic.VOL_SURFACES, Topic.INSTRUMENTS)
ORDER_TOPICS = (Topic.LIQUIDATIONS, Topic.ADL)
WORKER_INPUTS = (
    *MARKET_TOPICS,
    Topic.FILLS,
    Topic.COLLATERAL,
    Topic.MARKET_BROADCAST,
    Topic.INSURANCE_CLAIMS,
)


class SimulatorLoop:
    """A producer of inputs and fills, a consumer of orders, and the matching engine."""

    def __init__(
        self, settings: Settings, codec: AvroCodec | None = None, group: str | None = None
    ) -> None:
        self.settings = settings
        self.group = group  # the workers' consumer group: pump waits for it to catch up
        self.codec = codec or codec_from_settings(settings)
        self.producer = make_producer(settings)
        self.consumer = make_consumer(
            settings,
            f"spma-simulator-{uuid.uuid4().hex[:8]}",
            {"enable.auto.commit": True, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        )
        self.consumer.subscribe([settings.topic(t) for t in ORDER_TOPICS])
        self.engine = MatchingEngine()
        self.clock: datetime | None = None
        self.stats: Counter[str] = Counter()

    def publish(self, items: list[tuple[str, str, Record]]) -> None:
        """Produce inputs (following market records and the event clock) and wait for acks."""
        for n, (topic, key, record) in enumerate(items):
            if topic in MARKET_TOPICS:
                self.engine.on_market(record, f"sim:{topic}:{n}")
            ts = getattr(record, "ts", None)
            if ts is not None and (self.clock is None or ts > self.clock):
                self.clock = ts
            produce(self.producer, self.codec, self.settings, topic, key, record)
        flush(self.producer)

    def seed(self, items: list[tuple[str, str, Record]], timeout_s: float = 120.0) -> None:
        """Publish a seeded exchange: reference data, market and deposits first, then, once the
        workers have read them, the fills (collateral and fills are separate topics with no order
        between them: a fill must not meet an account before its deposit)."""
        self.seed_first(items)
        self.wait_caught_up(timeout_s)
        self.seed_fills(items)

    def seed_first(self, items: list[tuple[str, str, Record]]) -> None:
        """Publish what a seeded exchange needs before its fills: everything but the fills."""
        self.publish([item for item in items if item[0] != Topic.FILLS])

    def seed_fills(self, items: list[tuple[str, str, Record]]) -> None:
        """Publish a seeded exchange's fills (once the workers have read what came first)."""
        self.publish([item for item in items if item[0] == Topic.FILLS])

    def wait_caught_up(self, timeout_s: float = 120.0) -> None:
        """Until the workers' group has committed every input (bounded; no group: no wait)."""
        deadline = time.monotonic() + timeout_s
        while not self._caught_up():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers did not catch up within {timeout_s:g} s")
            time.sleep(0.5)

    def pump(self, quiet_s: float = 3.0, timeout_s: float = 120.0) -> int:
        """Execute orders until none came for quiet_s and, given the workers' group, the workers
        have committed every input (a busy worker may be seconds behind); bounded by timeout_s.
        Returns the orders seen."""
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        seen = 0
        while time.monotonic() < deadline:
            got = self.step()
            if not got:
                if time.monotonic() - last >= quiet_s:
                    if self._caught_up():
                        break
                    last = time.monotonic() - quiet_s + 1.0  # look again in a second
                continue
            last = time.monotonic()
            seen += got
        return seen

    def step(self, timeout_s: float = 0.3) -> int:
        """Execute the orders that arrive within one consume of up to timeout_s and publish
        their fills; how many orders came (0: none, the loop is quiet for now)."""
        msgs = [m for m in self.consumer.consume(500, timeout=timeout_s) if m.error() is None]
        if not msgs:
            return 0
        fills = []
        for msg in map(received, msgs):
            fills += self._execute(msg.topic, msg.value)
        self.publish(fills)
        return len(msgs)

    def _caught_up(self) -> bool:
        """True when the workers' group has committed every input (or no group is known)."""
        return self.lag() == 0

    def lag(self) -> int | None:
        """The inputs the workers' group has yet to commit (0 with no group known); None while
        the broker cannot tell yet (its group coordinator is being elected or loaded)."""
        if self.group is None:
            return 0
        try:
            return group_lag(self.settings, self.group, WORKER_INPUTS)
        except KafkaException as exc:
            # A broker that has just started may still be electing the group's coordinator
            # (Apache Kafka answers NOT_COORDINATOR until __consumer_offsets is ready).
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and (
                error.code() in COORDINATOR_NOT_READY or error.retriable()
            ):
                return None
            raise

    def _execute(self, topic: str, value: bytes | None) -> list[tuple[str, str, Record]]:
        """The fills of one order message (none for an undecodable one, counted)."""
        logical = topic.removeprefix(self.settings.topic_prefix)
        try:
            order = self.codec.decode(logical, value)
        except CodecError:
            self.stats["bad_orders"] += 1
            return []
        ts = (self.clock or datetime.now().astimezone()) + timedelta(milliseconds=1)
        self.clock = ts
        if isinstance(order, LiquidationOrder):
            execution = self.engine.execute_liquidation(order, ts)
            self.stats["liquidation_orders"] += 1
        else:
            assert isinstance(order, AdlOrder)
            execution = self.engine.execute_adl(order, ts)
            self.stats["adl_orders"] += 1
        self.stats["fills"] += len(execution.fills)  # a tally: a plain str key (counts.json)
        return [(Topic.FILLS, f.account, f) for f in execution.fills]

    def close(self) -> None:
        """Leave the group and flush."""
        self.consumer.close()
        flush(self.producer)
