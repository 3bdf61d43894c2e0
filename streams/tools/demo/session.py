"""The demo: a stress scenario end to end on a broker of its own, a live view, and a report.

It starts a broker on loopback (unless given one: Apache Kafka where Java 17 and Maven are at hand,
else the embedded Tansu, or the engine asked for), creates the topics, starts a real `spma worker`
process, seeds an exchange (BTC, ETH, SOL; perpetuals, futures and option chains; accounts of every
kind) through Kafka, then plays a calm hour, a crash (BTC -30%, ETH and SOL following, vols spiking,
books thinning to 15%) and a partial recovery in accelerated event time, with the simulator as the
matching engine for liquidation and ADL orders. A live view follows the outputs; at the end a
summary and a report folder (chart, worst cases, counts). Each step waits for the pipeline to have
done its part (the pacer); the run fails only when nothing progressed for a stall window, or after
an absolute cap, with a message naming the phase, the worker's log and the report folder.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from infra.broker import free_port
from infra.broker_engine import Engine, start_broker
from infra.settings import Settings
from streams.codec import codec_from_settings
from streams.records import Record
from streams.tools.demo.observer import Observer, TimelinePoint
from streams.tools.demo.pacing import Pacer
from streams.tools.demo.report import write_report
from streams.tools.demo.stall import CAP_S, STALL_WINDOW_S, StallDetector
from streams.tools.demo.worker import start_worker, stop_worker
from streams.tools.exchange import Exchange
from streams.tools.simulator.runner import SimulatorLoop
from streams.topics.admin import create_topics
from streams.topics.catalog import Topic

LIQUIDITY_PROVIDERS = 16  # the makers of every seeded trade: each long has a short
PARTITIONS = 1
"""The demo's account partitions. One, so that the insurance fund reads its inputs in one order:
with several, each partition's ADL candidates, claims and fees reach the fund's single-partition
claims topic interleaved as the partitions happen to finish (wall-clock), and a shortfall's split
over counterparties, hence the ADL orders, differed between runs of one seed. The worker is one
process either way (README: Same seed, same figures)."""
SEED = 7
"""The exchange's default seed (accounts, sizes, oracle noise)."""


def scenario_start(now: datetime) -> datetime:
    """Where the scenario's event time starts: midnight UTC of the day before ``now``.

    Why not ``now`` minus the scenario's length, as before: the options' time to expiry, and so
    every option value, margin, fill and the fund's balance, then depended on the time of day a
    run started. From midnight, every run has the same clock relative to the listed expiries (at
    08:00 UTC, 33 and 92 days on) and to each other, at least a day in the past (no input is
    from the future) and within the brokers' default retention (seven days)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=1)


@dataclass(frozen=True)
class Leg:
    """One step of the scenario: minutes of event time, price factors, depth and vol levels."""

    phase: str
    minutes: float
    factors: dict[str, float]
    depth: float
    vol: float


def _path() -> list[Leg]:
    """A calm hour, a crash over half an hour, a partial recovery, and a quiet end."""
    calm = [Leg("calm", 15, {"BTC": f, "ETH": f, "SOL": f}, 1.0, 1.0) for f in (1.002, 0.998)] * 2
    down = 0.70 ** (1 / 6)
    crash = [
        Leg("crash", 5, {"BTC": down, "ETH": down**0.95, "SOL": down**1.1}, d, v)
        for d, v in zip(
            (0.8, 0.6, 0.45, 0.3, 0.2, 0.15), (1.2, 1.4, 1.6, 1.8, 2.0, 2.0), strict=True
        )
    ]
    up = 1.12 ** (1 / 4)
    recovery = [
        Leg("recovery", 10, {"BTC": up, "ETH": up, "SOL": up**1.1}, d, v)
        for d, v in zip((0.25, 0.4, 0.55, 0.7), (1.8, 1.6, 1.4, 1.3), strict=True)
    ]
    quiet = [Leg("settle", 2, {}, 0.7, 1.3)] * 2
    return calm + crash + recovery + quiet


def crash_path() -> list[Leg]:
    """The crash with one step of each other phase around it: a quarter of the calm hour, the
    crash's six steps as they are, a quarter of the recovery, one quiet step (nine steps of the
    demo's sixteen). Every step goes out staged and settles as in the demo: the same work per
    step, on the steps where accounts are called, liquidated, go bankrupt and meet ADL. The
    determinism test plays it (tests/test_demo.py)."""
    path = _path()
    calm, crash, recovery, quiet = (
        [leg for leg in path if leg.phase == phase]
        for phase in ("calm", "crash", "recovery", "settle")
    )
    return calm[:1] + crash + recovery[:1] + quiet[:1]


@dataclass
class DemoResult:
    """What the demo did and where its report is."""

    accounts: int
    inputs: int
    counts: dict[str, int]
    states: dict[str, int]
    prices: dict[str, float]
    fund_balance: float
    simulator: dict[str, int]
    report: Path
    seconds: float = 0.0
    timeline: list[TimelinePoint] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures of the summary, as data."""
        return {
            "accounts": self.accounts,
            "inputs": self.inputs,
            "seconds": round(self.seconds, 1),
            "fund_balance": self.fund_balance,
            "prices": self.prices,
            "simulator": self.simulator,
        }


View = Callable[[Observer, str, float, dict[str, float]], None]


@dataclass(frozen=True)
class Pace:
    """How long a still pipeline is given (the stall window) and the cap of a whole run."""

    stall_window_s: float = STALL_WINDOW_S
    cap_s: float = CAP_S


def run_demo(
    accounts: int = 2000,
    partitions: int = PARTITIONS,
    pace: Pace = Pace(),
    report_root: Path = Path("reports"),
    view: View | None = None,
    log: Callable[[str], object] = print,
    bootstrap: str | None = None,
    topic_prefix: str = "spma.",
    engine: Engine | str = Engine.AUTO,
    seed: int = SEED,
    legs: Sequence[Leg] | None = None,
) -> DemoResult:
    """The whole demo (on a fresh broker of the engine unless given one), paced by the pipeline;
    DemoFailed when it stalls or its worker dies. ``legs``: the scenario's steps (the demo's
    sixteen when None; ``crash_path`` for a shorter run)."""
    scenario = Scenario(accounts, seed, tuple(_path() if legs is None else legs))
    if bootstrap is not None:
        settings = Settings(
            bootstrap_servers=bootstrap, partitions=partitions, topic_prefix=topic_prefix
        )
        return _session(settings, scenario, pace, report_root, view, log)
    broker = start_broker(engine)
    try:
        name = "Apache Kafka" if broker.engine == "kafka" else "embedded Tansu"
        log(f"{name} {broker.version} on {broker.bootstrap}")
        settings = Settings(
            bootstrap_servers=broker.bootstrap,
            partitions=partitions,
            topic_prefix=topic_prefix,
            # Tansu rejects aiokafka's idempotent producer (README: Tansu and Apache Kafka).
            producer_idempotence=broker.engine == "kafka",
        )
        return _session(settings, scenario, pace, report_root, view, log)
    finally:
        broker.stop()


@dataclass(frozen=True)
class Scenario:
    """What the exchange is seeded with (how many accounts, the seed of its randomness) and the
    steps played."""

    accounts: int
    seed: int = SEED
    legs: tuple[Leg, ...] = field(default_factory=lambda: tuple(_path()))


def _session(
    settings: Settings,
    scenario: Scenario,
    pace: Pace,
    report_root: Path,
    view: View | None,
    log: Callable[[str], object],
) -> DemoResult:
    """Topics, a worker, the seeded exchange, the scenario, the report."""
    started = time.monotonic()
    create_topics(settings, timeout_s=60)
    codec = codec_from_settings(settings)
    folder = report_root / datetime.now(tz=UTC).strftime("demo-%Y%m%d-%H%M%S")
    app_id = f"spma-demo-{uuid.uuid4().hex[:8]}"
    web_port = free_port()
    worker = start_worker(settings, app_id, folder / "logs", web_port)
    log(f"risk console: http://127.0.0.1:{web_port}/console (while the demo runs)")
    observer = Observer(settings, codec)
    loop = SimulatorLoop(settings, codec, group=app_id)  # legs wait for the worker
    pacer = Pacer(
        observer,
        loop,
        worker,
        StallDetector(pace.stall_window_s, pace.cap_s),
        [folder / "logs" / "worker.log"],
        folder,
    )
    try:
        ex = _play(pacer, scenario, view, log)
        log(
            f"the pipeline's longest pause: {pacer.detector.longest_idle_s:.1f} s, in phase "
            f"{pacer.longest_pause_phase} (a stall is {pace.stall_window_s:g} s without progress)"
        )
    except KafkaException as exc:
        raise pacer.failed(f"the broker failed a request: {exc}") from None
    finally:
        loop.consumer.close()
        loop.producer.close()  # before the broker stops: no reconnection noise after the run
        observer.close()
        stop_worker(worker)
    result = DemoResult(
        accounts=len(_accounts(ex)),
        inputs=len(ex.inputs) + loop.stats["fills"],
        counts=dict(observer.counts),
        states=observer.states(),
        prices=dict(ex.prices),
        fund_balance=observer.fund_balance,
        simulator=dict(loop.stats),
        report=folder,
        seconds=time.monotonic() - started,
        timeline=observer.timeline,
    )
    write_report(folder, observer, result.summary())
    return result


def _play(
    pacer: Pacer, scenario: Scenario, view: View | None, log: Callable[[str], object]
) -> Exchange:
    """Seed the exchange, then play the scenario leg by leg, each leg once the last settled."""
    observer, loop, path = pacer.observer, pacer.loop, scenario.legs
    scenario_s = sum(leg.minutes for leg in path) * 60.0
    ex = Exchange(
        scenario_start(datetime.now(tz=UTC)),
        seed=scenario.seed,
        liquidity_providers=LIQUIDITY_PROVIDERS,
    )
    accounts = scenario.accounts
    _seed(ex, accounts)
    pacer.phase = "seed"
    loop.seed_first(ex.inputs)  # a fill must not meet an account before its deposit
    pacer.caught_up()
    loop.seed_fills(ex.inputs)
    log(f"seeded {accounts:,} accounts: {len(ex.inputs):,} inputs through Kafka")
    pacer.statuses(_accounts(ex))
    pacer.phase = "seed (liquidations)"
    pacer.settle(loop.clock)  # the seed's orders filled at the seed's market, not the next step's
    observer.mark("open", 0.0, ex.prices)
    minute, crashing, total = 0.0, False, scenario_s / 60.0
    for leg in path:
        minute += leg.minutes
        pacer.phase = f"{leg.phase} (scenario minute {minute:g} of {total:g})"
        mark = len(ex.inputs)
        reckless: list[tuple[str, str, Record]] = []
        if leg.phase == "crash" and not crashing:
            crashing = True
            _open_reckless(ex, accounts)
            reckless, mark = ex.inputs[mark:], len(ex.inputs)
        ex.tick(int(leg.minutes * 60_000))
        ex.move(leg.factors, leg.depth, leg.vol)
        _publish_market(pacer, ex.inputs[mark:])
        if reckless:
            _publish_accounts(pacer, reckless)
        observer.mark(leg.phase, minute, ex.prices)
        if view is not None:
            view(observer, leg.phase, minute / total, ex.prices)
    pacer.phase = "end"
    pacer.drain()
    observer.mark("end", minute, ex.prices)
    return ex


def _seed(ex: Exchange, accounts: int) -> None:
    """Listing, market and the accounts."""
    ex.list_instruments()
    ex.publish_market()
    ex.open_accounts(accounts)


def _open_reckless(ex: Exchange, accounts: int) -> None:
    """A few reckless longs (3% margin) traded on the eve of the crash, at its last price."""
    btc = ex.prices["BTC"]
    for i in range(max(3, accounts // 400)):
        ex.deposit(f"gap-{i:03d}", "USDC", 0.03 * btc)
        ex.fill(f"gap-{i:03d}", "BTC-PERPETUAL", 1.0, btc)


MARKET_STAGES = (Topic.ORACLE_PRICES, Topic.BOOK_DEPTH, Topic.VOL_SURFACES)
"""The order a step's market goes out in: one topic at a time, in it one underlying at a time."""


def _publish_market(pacer: Pacer, items: list[tuple[str, str, Record]]) -> None:
    """A step's market in stages, prices, then depth, then vols, each one underlying at a time,
    each stage read by the workers before the next goes out; then the step settles (its orders
    filled).

    Why. The workers revalue every account on each market update and act on what they see
    (margin calls, liquidations, the ADL candidates of the step's first update). Prices, depth
    and vols are separate topics, and each underlying a partition of its own, with no order
    between them: sent together, an account met the new BTC price with the old ETH one, or the
    new prices with the old books, in whatever order the workers read them, and the same seed
    gave other counts and fund balances on every run."""
    for stage in market_stages(items):
        pacer.loop.publish(stage)
        pacer.caught_up()
    pacer.settle(pacer.loop.clock)


def market_stages(
    items: list[tuple[str, str, Record]],
) -> list[list[tuple[str, str, Record]]]:
    """A step's inputs grouped by market topic (in ``MARKET_STAGES`` order) and, in each, by
    underlying (the key, in the order they come); anything else last, as one stage."""
    stages: dict[tuple[int, str], list[tuple[str, str, Record]]] = {}
    for item in items:
        topic, key, _ = item
        rank = MARKET_STAGES.index(topic) if topic in MARKET_STAGES else len(MARKET_STAGES)
        stages.setdefault((rank, key if rank < len(MARKET_STAGES) else ""), []).append(item)
    return [stages[k] for k in sorted(stages, key=lambda k: k[0])]


def _publish_accounts(pacer: Pacer, items: list[tuple[str, str, Record]]) -> None:
    """New accounts' deposits, then (once the workers have them) their fills, then their orders
    filled, each stage complete before the next.

    The reckless longs go out this way after the crash's first prices have settled, as a venue's
    late trade report would: they open BANKRUPT with their positions (the fund and ADL at work,
    not only the book) on every run. Deposits, fills and prices are separate topics with no order
    between them: sent together, a long's fill met its deposit, its own price or the crash's in
    whatever order they arrived, and the same seed gave other deficits and fund balances."""
    pacer.loop.seed_first(items)
    pacer.caught_up()
    pacer.loop.seed_fills(items)
    pacer.settle(pacer.loop.clock)


def _accounts(ex: Exchange) -> set[str]:
    """Every account the exchange opened."""
    return {key for topic, key, _ in ex.inputs if topic in (Topic.FILLS, Topic.COLLATERAL)}
