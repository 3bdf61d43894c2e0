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
from streams.kafka_io import (
    Received,
    flush,
    group_lag,
    make_consumer,
    make_producer,
    produce,
    received,
)
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
        self.orders_group = f"spma-simulator-{uuid.uuid4().hex[:8]}"
        self.consumer = make_consumer(
            settings,
            self.orders_group,
            # committed by step, once its fills are out: orders_lag is exact
            {
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
            },
        )
        self.consumer.subscribe([settings.topic(t) for t in ORDER_TOPICS])
        self.engine = MatchingEngine()
        self.clock: datetime | None = None
        self.stats: Counter[str] = Counter()
        self.held: list[Received] = []  # ADL orders waiting for the workers (see step)

    def publish(self, items: list[tuple[str, str, Record]], follow: bool = True) -> None:
        """Produce inputs (following market records and, unless ``follow`` is off, the event
        clock) and wait for acks."""
        for n, (topic, key, record) in enumerate(items):
            if topic in MARKET_TOPICS:
                self.engine.on_market(record, f"sim:{topic}:{n}")
            ts = getattr(record, "ts", None)
            if follow and ts is not None and (self.clock is None or ts > self.clock):
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
                    if self._caught_up() and not self.held:
                        break
                    last = time.monotonic() - quiet_s + 1.0  # look again in a second
                continue
            last = time.monotonic()
            seen += got
        return seen

    def step(self, timeout_s: float = 0.3) -> int:
        """Execute the orders that arrive within one consume of up to timeout_s and publish
        their fills; how many orders were executed (0: none, the loop is quiet for now).

        ADL orders wait (``held``) until the workers have committed every input: the fund sends
        a claim's payout to the bankrupt account with its ADL orders, and the payout, a transfer,
        must reach the account before the ADL fills do. Arriving in either order, they made the
        account's statuses, and what followed from them, differ between runs of the same seed."""
        msgs = [m for m in self.consumer.consume(500, timeout=timeout_s) if m.error() is None]
        orders = list(map(received, msgs))
        self.held += [m for m in orders if m.topic == self.settings.topic(Topic.ADL)]
        ready = [m for m in orders if m.topic != self.settings.topic(Topic.ADL)]
        if self.held and self.lag() == 0:
            ready, self.held = ready + self.held, []
        fills = []
        for msg in ready:
            fills += self._execute(msg.topic, msg.value)
        self.publish(fills, follow=False)  # the clock is the scenario's: see _fill_time
        if msgs:
            self.consumer.commit(asynchronous=False)  # orders_lag counts from what is committed
        return len(ready)

    def orders_lag(self) -> int | None:
        """Orders on the order topics the simulator has yet to execute (its fills published and
        the orders committed after each step, held ones counted); None while the broker cannot
        tell yet."""
        lag = self._group_lag(self.orders_group, ORDER_TOPICS)
        return None if lag is None else lag + len(self.held)

    def _caught_up(self) -> bool:
        """True when the workers' group has committed every input (or no group is known)."""
        return self.lag() == 0

    def lag(self) -> int | None:
        """The inputs the workers' group has yet to commit (0 with no group known); None while
        the broker cannot tell yet (its group coordinator is being elected or loaded)."""
        if self.group is None:
            return 0
        return self._group_lag(self.group, WORKER_INPUTS)

    def _group_lag(self, group: str, topics: tuple[str, ...]) -> int | None:
        """What a consumer group has yet to commit of some topics; None while the broker cannot
        tell yet (its group coordinator is being elected or loaded)."""
        try:
            return group_lag(self.settings, group, topics)
        except KafkaException as exc:
            # A broker that has just started may still be electing the group's coordinator
            # (Apache Kafka answers NOT_COORDINATOR until __consumer_offsets is ready).
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and (
                error.code() in COORDINATOR_NOT_READY or error.retriable()
            ):
                return None
            raise

    def _fill_time(self, ordered: datetime) -> datetime:
        """A fill's event time: a millisecond after its order, or after the last input the
        scenario published when that is later. Never the order of arrival: orders come from
        several partitions in whatever order the broker delivers them, and a clock that counted
        them made the same order's fill time, and what followed from it, differ between runs."""
        latest = ordered if self.clock is None else max(ordered, self.clock)
        return latest + timedelta(milliseconds=1)

    def _execute(self, topic: str, value: bytes | None) -> list[tuple[str, str, Record]]:
        """The fills of one order message (none for an undecodable one, counted)."""
        logical = topic.removeprefix(self.settings.topic_prefix)
        try:
            order = self.codec.decode(logical, value)
        except CodecError:
            self.stats["bad_orders"] += 1
            return []
        if isinstance(order, LiquidationOrder):
            execution = self.engine.execute_liquidation(order, self._fill_time(order.ts))
            self.stats["liquidation_orders"] += 1
        else:
            assert isinstance(order, AdlOrder)
            execution = self.engine.execute_adl(order, self._fill_time(order.ts))
            self.stats["adl_orders"] += 1
        self.stats["fills"] += len(execution.fills)  # a tally: a plain str key (counts.json)
        return [(Topic.FILLS, f.account, f) for f in execution.fills]

    def close(self) -> None:
        """Leave the group and flush."""
        self.consumer.close()
        flush(self.producer)
