"""Synthetic load for `spma loadgen`: fills, oracle prices and book depth at a steady rate.

The instruments and markets are the demo exchange's (streams/tools/exchange.py): perpetuals
(linear and inverse), dated futures and option chains on BTC, ETH and SOL. A setup phase lists
the instruments, publishes a first market and funds every account with a deposit, so that the
fills that follow are valid inputs (known instruments, funded accounts) and a worker margins them
instead of rejecting them. Then, at the requested rate, each event is a fill of a random account
on a random instrument near its current price, an oracle quote from one source of an underlying
whose price follows a small random walk, or a depth curve at that price, in the requested mix.
Every record carries the wall-clock time, so no worker rejects it as coming from the future.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from confluent_kafka import Producer

from infra.settings import Settings
from streams import records as r
from streams.codec import AvroCodec, codec_from_settings
from streams.kafka_io import flush, make_producer, produce
from streams.tools.exchange import BPS, DEPTH_USD, SOURCES, Exchange
from streams.topics.catalog import Topic

Input = tuple[str, str, r.Record]
KINDS = (Topic.FILLS, Topic.ORACLE_PRICES, Topic.BOOK_DEPTH)


@dataclass(frozen=True)
class LoadPlan:
    """What to send: events per second, accounts, when to stop, and the mix of event kinds."""

    rate: float
    accounts: int
    count: int | None = None
    duration_s: float | None = None
    mix: tuple[float, float, float] = (0.8, 0.15, 0.05)  # fills, oracle prices, depth
    seed: int = 7
    setup: bool = True

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be positive")
        if self.accounts < 1:
            raise ValueError("accounts must be at least 1")
        if self.count is None and self.duration_s is None:
            raise ValueError("give a count or a duration")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError("duration must be positive")
        if len(self.mix) != 3 or min(self.mix) < 0 or not sum(self.mix) > 0:
            raise ValueError(
                "mix wants three non-negative shares (fills, prices, depth), not all 0"
            )


@dataclass
class LoadReport:
    """What was sent: setup records and load records by topic, and how long the load took."""

    setup: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def events(self) -> int:
        """Load events sent (setup excluded)."""
        return sum(self.sent.values())

    @property
    def rate(self) -> float:
        """Achieved load events per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


class LoadGenerator:
    """Valid synthetic inputs over the demo exchange's instruments and markets."""

    def __init__(self, accounts: int, seed: int = 7, run_id: str | None = None) -> None:
        now = datetime.now(tz=UTC).replace(microsecond=0)
        self.exchange = Exchange(now - timedelta(minutes=1), seed=seed)
        self.rng: np.random.Generator = self.exchange.rng
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.accounts = [f"lg-{i:06d}" for i in range(accounts)]
        self.tradable: list[tuple[str, str, str]] = []  # (name, underlying, kind)
        for und in self.exchange.prices:
            self.tradable += [
                (f"{und}-PERPETUAL", und, "linear"),
                (f"{und}-PERPETUAL-INV", und, "inverse"),
            ]
            self.tradable += [(n, und, "option") for n, *_ in self.exchange.option_names(und)[:4]]
        self.serial = 0

    def setup(self) -> list[Input]:
        """Instruments, a first market, and a USDC deposit for every account."""
        self.exchange.list_instruments()
        self.exchange.publish_market()
        ts = datetime.now(tz=UTC)
        deposits: list[Input] = [
            (
                Topic.COLLATERAL,
                a,
                r.CollateralTransfer(
                    transfer_id=f"lg-{self.run_id}-dep-{a}",
                    account=a,
                    asset="USDC",
                    amount=250_000.0,
                    kind="DEPOSIT",
                    ts=ts,
                ),
            )
            for a in self.accounts
        ]
        return [*self.exchange.inputs, *deposits]

    def event(self, kind: str) -> Input:
        """One load event of a kind (a topic of KINDS), stamped now."""
        self.serial += 1
        ts = datetime.now(tz=UTC)
        if kind == Topic.FILLS:
            return self._fill(ts)
        und = str(self.rng.choice(list(self.exchange.prices)))
        self.exchange.prices[und] *= float(np.exp(self.rng.normal(0.0, 0.0005)))
        price = self.exchange.prices[und]
        if kind == Topic.ORACLE_PRICES:
            source, weight = SOURCES[int(self.rng.integers(len(SOURCES)))]
            quote = r.OraclePrice(source=source, underlying=und, price=price, weight=weight, ts=ts)
            return (Topic.ORACLE_PRICES, und, quote)
        total = DEPTH_USD[und] * float(self.rng.uniform(0.5, 1.5))
        cum = [total * f for f in (0.05, 0.15, 0.4, 1.0, 2.0, 4.0, 6.0)]
        depth = r.BookDepth(underlying=und, mid=price, bps=BPS, bid=cum, ask=cum, ts=ts)
        return (Topic.BOOK_DEPTH, und, depth)

    def _fill(self, ts: datetime) -> Input:
        """A taker or maker fill of a random account near the instrument's current price."""
        account = self.accounts[int(self.rng.integers(len(self.accounts)))]
        name, und, kind = self.tradable[int(self.rng.integers(len(self.tradable)))]
        spot = self.exchange.prices[und]
        notional = float(self.rng.uniform(1_000.0, 20_000.0))
        if kind == "option":
            qty, price = notional / spot / 10.0, 0.02 * spot
        elif kind == "inverse":
            qty, price = round(notional, -1) or 10.0, spot
        else:
            qty, price = notional / spot, spot * (1.0 + float(self.rng.normal(0.0, 0.0002)))
        fill = r.Fill(
            fill_id=f"lg-{self.run_id}-{self.serial}",
            account=account,
            instrument=name,
            side="BUY" if self.rng.random() < 0.5 else "SELL",
            qty=qty,
            price=price,
            fee=qty * price * 0.0002 if kind == "linear" else 0.0,
            liquidity="TAKER" if self.rng.random() < 0.7 else "MAKER",
            ts=ts,
        )
        return (Topic.FILLS, account, fill)


def run_load(
    settings: Settings,
    plan: LoadPlan,
    log: Callable[[str], None] = lambda _: None,
    producer: Producer | None = None,
    codec: AvroCodec | None = None,
) -> LoadReport:
    """Send the setup, then load events at the plan's rate until its count or duration."""
    producer = producer or make_producer(settings)
    codec = codec or codec_from_settings(settings)
    gen = LoadGenerator(plan.accounts, plan.seed)
    report = LoadReport()
    if plan.setup:
        setup = gen.setup()
        for topic, key, record in setup:
            produce(producer, codec, settings, topic, key, record)
        flush(producer)
        report.setup = dict(Counter(topic for topic, _, _ in setup))
        log(f"setup: {len(setup):,} records (instruments, market, {plan.accounts:,} deposits)")
    shares = np.asarray(plan.mix, dtype=float) / sum(plan.mix)
    sent: Counter[str] = Counter()
    start = time.monotonic()
    stop = start + plan.duration_s if plan.duration_s is not None else float("inf")
    i = 0
    while plan.count is None or i < plan.count:
        now = time.monotonic()
        if now >= stop:
            break
        wait = start + i / plan.rate - now
        if wait > 0:
            producer.poll(min(wait, stop - now, 0.1))  # serve delivery reports while waiting
            continue
        topic, key, record = gen.event(KINDS[int(gen.rng.choice(3, p=shares))])
        produce(producer, codec, settings, topic, key, record)
        producer.poll(0)
        sent[topic] += 1
        i += 1
    flush(producer)
    report.seconds = time.monotonic() - start
    report.sent = dict(sent)
    return report
