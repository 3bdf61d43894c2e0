"""An oracle attack on the embedded broker: one of three sources 30% off for a minute.

A leveraged long (1 BTC on 35,000 USDC) is HEALTHY at 100,000 and would be liquidated at 70,000.
For 60 s of event time chainlink quotes BTC 30% below the two honest sources (which move a few
bps around 100,000), with a weight of 3 against their 1 and 1: a weighted median alone would
follow it, only the deviation guard keeps it out. Every mark the worker broadcasts stays within
the guard of the honest price, never STALE, the account stays HEALTHY, and no margin call nor
liquidation order goes out. Then all three sources agree on 70,000: the account is liquidated at
once, which shows that only the guard, not the account, kept the orders away during the attack.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from engine.params import OracleParams
from streams import records as r
from tests.faults import scenario
from tests.faults.chaos import chaos
from tests.streams.worker_harness import Collector

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ATTACK_S = 60
GUARD = OracleParams().max_deviation
WEIGHTS = {"chainlink": 3.0}  # the compromised source outweighs the two honest ones together


def _marks(out: Collector) -> list[r.MarketUpdate]:
    """BTC marks as partition 0 received them."""
    got = sorted(
        (m for m in out.records["market-broadcast"] if m.partition == 0), key=lambda m: m.offset
    )
    updates = [out.harness.codec.decode("market-broadcast", m.value) for m in got]
    return [u for u in updates if u.kind == "MARK" and u.underlying == "BTC"]  # type: ignore[attr-defined]


def test_one_source_30_percent_off_for_a_minute(kafka_bootstrap: str, tmp_path: Path) -> None:
    with chaos(kafka_bootstrap, tmp_path, partitions=2) as c:
        topics = ("margin-status", "market-broadcast", "margin-calls", "liquidations", "dlq")
        out = c.collect(topics)
        c.start()
        t0 = scenario.start_time()
        c.produce(scenario.market(c, t0))
        c.wait_count(out, "market-broadcast", 3 * 2, timeout_s=90)
        long = r.Fill(
            fill_id="lever-1",
            account="lever",
            instrument=scenario.PERP,
            side="BUY",
            qty=1.0,
            price=scenario.BTC,
            liquidity="TAKER",
            ts=t0 + timedelta(milliseconds=2),
        )
        for item in (  # one after the other: fills and transfers are two topics, no order
            scenario.deposit(c, "lever", t0 + timedelta(milliseconds=1), 35_000.0),
            c.encode("fills", "lever", long),
        ):
            c.wait_statuses(out, c.produce([item]), timeout_s=60)

        rng = random.Random(5)
        honest: dict[int, float] = {}
        attack = []
        for second in range(1, ATTACK_S + 1):
            ts = t0 + timedelta(seconds=second)
            price = scenario.BTC * (1 + rng.uniform(-5e-4, 5e-4))
            honest[second] = price
            attack += scenario.quotes(c, ts, price, {"chainlink": price * 0.7}, WEIGHTS)
        c.produce(attack)
        end = t0 + timedelta(seconds=ATTACK_S)
        out.wait(lambda x: any(u.ts == end for u in _marks(x)), 60, "the last mark")
        out.settle(quiet_s=3.0, timeout_s=30)

        during = [u for u in _marks(out) if t0 < u.ts <= end]
        assert len(during) >= ATTACK_S // 2, len(during)
        for u in during:
            fair = honest[round((u.ts - t0).total_seconds())]
            assert abs(u.mark / fair - 1.0) <= GUARD, (u.ts, u.mark, fair)  # type: ignore[operator]
            assert not u.stale
        statuses: list[r.MarginStatus] = out.decoded("margin-status")  # type: ignore[assignment]
        assert statuses and all(s.state == "HEALTHY" for s in statuses)
        assert not out.records["liquidations"] and not out.records["margin-calls"]
        assert not out.records["dlq"]

        c.produce(scenario.quotes(c, end + timedelta(seconds=1), scenario.BTC * 0.7))
        c.wait_count(out, "liquidations", 1, timeout_s=60)
        assert out.decoded("margin-status")[-1].state == "LIQUIDATION"  # type: ignore[attr-defined]
