"""The demo session: embedded broker, topics, a seeded exchange through Kafka and the engine.

Every input goes through the broker as Avro; the session reads the inputs back, runs the market
state and one account processor per partition over them in order, sends the statuses and calls to
their topics, reads those back and prints a summary. A hard deadline bounds every step.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.broker import EmbeddedBroker
from infra.settings import Settings
from infra.topics import create_topics
from streams.codec import AvroCodec, CodecError, codec_from_settings
from streams.demo.exchange import Exchange
from streams.kafka_io import Received, drain, flush, make_producer, produce
from streams.market_state import MarketState
from streams.processor import AccountProcessor, InputRef, InputRejected, Output
from streams.records import (
    BookDepth,
    CollateralTransfer,
    Fill,
    InstrumentRecord,
    OraclePrice,
    RiskParamsRecord,
    VolSurfaceRecord,
)

INPUTS = ("instruments", "oracle-prices", "book-depth", "vol-surfaces", "collateral", "fills")
PATH = [  # (BTC, ETH, SOL factor, depth factor, vol level) per step: calm, crash, recovery
    (1.0, 1.0, 1.0, 1.0, 1.0),
    (0.99, 0.99, 0.985, 1.0, 1.0),
    (0.93, 0.94, 0.92, 0.6, 1.3),
    (0.90, 0.91, 0.88, 0.3, 1.7),
    (0.92, 0.93, 0.90, 0.15, 2.0),
    (1.06, 1.05, 1.07, 0.4, 1.5),
]


@dataclass
class DemoResult:
    """What the session did."""

    accounts: int
    inputs: int
    statuses: int
    calls: int
    orders: int
    rejected: int
    states: Counter[str] = field(default_factory=Counter)
    prices: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def seed_exchange(accounts: int, start: datetime) -> Exchange:
    """The exchange's inputs: listing, market, accounts, then the price path."""
    ex = Exchange(start)
    ex.list_instruments()
    ex.publish_market()
    ex.open_accounts(accounts)
    for btc, eth, sol, depth, vol in PATH:
        ex.tick(60_000)
        ex.move({"BTC": btc, "ETH": eth, "SOL": sol}, depth, vol)
    return ex


class Pipeline:
    """The market state and one account processor per partition, applied in input order."""

    def __init__(self, partitions: int) -> None:
        self.market = MarketState()
        self.processors = [AccountProcessor(p, MarketState()) for p in range(partitions)]
        self.rejected: list[tuple[Received, str]] = []

    def handle(self, topic: str, rec: Received, codec: AvroCodec) -> list[Output]:
        """Decode one input and apply it; rejects are collected with the reason."""
        try:
            value = codec.decode(topic, rec.value)
            return self._apply(topic, value, rec)
        except (CodecError, InputRejected) as exc:
            self.rejected.append((rec, str(exc)))
            return []

    def _apply(self, topic: str, value: Any, rec: Received) -> list[Output]:
        """Market inputs go through the market state and are broadcast; others to the owner."""
        ref = InputRef(rec.topic, rec.partition, rec.offset)
        uid = f"{rec.topic}:{rec.partition}:{rec.offset}"
        if isinstance(value, Fill | CollateralTransfer):
            proc = self.processors[rec.partition % len(self.processors)]
            if isinstance(value, Fill):
                return proc.on_fill(value, ref)
            return proc.on_transfer(value, ref)
        handlers = {
            OraclePrice: self.market.on_price,
            BookDepth: self.market.on_depth,
            VolSurfaceRecord: self.market.on_vol,
            InstrumentRecord: self.market.on_instrument,
            RiskParamsRecord: self.market.on_params,
        }
        update = handlers[type(value)](value, uid)
        if update is None:
            return []
        outputs: list[Output] = []
        for proc in self.processors:
            outputs += proc.on_market(update, ref)
        return outputs


def run_demo(
    accounts: int = 300,
    partitions: int = 4,
    deadline_s: float = 170.0,
    log: Any = print,
    bootstrap: str | None = None,
    topic_prefix: str = "spma.",
) -> DemoResult:
    """The whole session (on a fresh embedded broker unless given one); bounded by a deadline."""
    if bootstrap is not None:
        settings = Settings(
            bootstrap_servers=bootstrap, partitions=partitions, topic_prefix=topic_prefix
        )
        return _session(settings, accounts, deadline_s, log)
    with EmbeddedBroker() as broker:
        log(f"embedded broker on {broker.bootstrap}")
        settings = Settings(
            bootstrap_servers=broker.bootstrap, partitions=partitions, topic_prefix=topic_prefix
        )
        return _session(settings, accounts, deadline_s, log)


def _session(settings: Settings, accounts: int, deadline_s: float, log: Any) -> DemoResult:
    """Seed, produce, read back, process, publish and read the outputs."""
    started = time.monotonic()
    partitions = settings.partitions
    create_topics(settings, timeout_s=30)
    codec = codec_from_settings(settings)
    ex = seed_exchange(accounts, datetime.now(tz=UTC).replace(microsecond=0))
    producer = make_producer(settings)
    for topic, key, record in ex.inputs:
        produce(producer, codec, settings, topic, key, record)
    flush(producer)
    log(f"produced {len(ex.inputs)} input records to {len(INPUTS)} topics")
    remaining = deadline_s - (time.monotonic() - started)
    received = drain(settings, INPUTS, timeout_s=remaining, expect=len(ex.inputs))
    if len(received) < len(ex.inputs):
        raise TimeoutError(f"read back {len(received)} of {len(ex.inputs)} inputs in time")
    pipeline = Pipeline(partitions)
    prefix = settings.topic_prefix
    ordered = sorted(received, key=lambda m: _input_time(codec, m, prefix))
    outputs: list[Output] = []
    for rec in ordered:
        outputs += pipeline.handle(rec.topic.removeprefix(settings.topic_prefix), rec, codec)
    log(f"processed {len(ordered)} inputs: {len(outputs)} outputs")
    for out in outputs:
        produce(producer, codec, settings, out.topic, out.key, out.record)
    flush(producer)
    remaining = deadline_s - (time.monotonic() - started)
    published = {out.topic for out in outputs}
    sent = drain(settings, tuple(published), timeout_s=remaining, expect=len(outputs))
    if len(sent) < len(outputs):
        raise TimeoutError(f"read back {len(sent)} of {len(outputs)} outputs in time")
    final = {}
    for msg in sent:
        if msg.topic == settings.topic("margin-status"):
            status = codec.decode("margin-status", msg.value)
            final[status.account] = status.state.value  # type: ignore[attr-defined]
    return DemoResult(
        accounts=accounts,
        inputs=len(ordered),
        statuses=sum(1 for m in sent if m.topic == settings.topic("margin-status")),
        calls=sum(1 for m in sent if m.topic == settings.topic("margin-calls")),
        orders=sum(1 for m in sent if m.topic == settings.topic("liquidations")),
        rejected=len(pipeline.rejected),
        states=Counter(final.values()),
        prices=dict(ex.prices),
        seconds=time.monotonic() - started,
    )


def _input_time(codec: AvroCodec, rec: Received, prefix: str) -> tuple[float, str, int]:
    """Sort key: the record's own timestamp, then its topic and offset."""
    topic = rec.topic.removeprefix(prefix)
    value = codec.decode(topic, rec.value)
    return (value.ts.timestamp(), topic, rec.offset)  # type: ignore[attr-defined]
