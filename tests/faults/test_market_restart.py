"""A market agent killed -9 and restarted changes no mark and no volatility.

A minute of BTC quotes from three sources (a seeded random walk), half of it before the kill and
half after: every mark the restarted worker broadcasts carries the mark, the EWMA volatility and
the STALE flag that one market state fed every quote in order (offline, never restarted) has
right after that quote. Without the quotes' table (the oracle's quotes, the last marks, the
EWMA estimator and the conflation's last forward, per underlying) a restarted agent reseeds its
volatility at the floor and the figures differ (tests/streams/test_market_table.py shows it).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from streams import records as r
from streams.market.state import MarketState
from tests.faults import scenario
from tests.faults.chaos import chaos
from tests.streams.worker_harness import Collector

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SECONDS = 60


def _marks(out: Collector) -> list[r.MarketUpdate]:
    """BTC marks as partition 0 received them, in order."""
    got = sorted(
        (m for m in out.records["market-broadcast"] if m.partition == 0), key=lambda m: m.offset
    )
    updates = [out.harness.codec.decode("market-broadcast", m.value) for m in got]
    return [
        u
        for u in updates
        if isinstance(u, r.MarketUpdate) and u.kind == "MARK" and u.underlying == "BTC"
    ]


def _offline(quotes: list[r.OraclePrice]) -> dict[datetime, set[tuple[float, float | None, bool]]]:
    """(mark, annual EWMA vol, stale) of BTC after each quote, by the quote's time."""
    state = MarketState()
    seen: dict[datetime, set[tuple[float, float | None, bool]]] = {}
    for n, quote in enumerate(quotes):
        state.on_price(quote, f"q{n}")
        if quote.underlying != "BTC" or "BTC" not in state.marks:
            continue
        annual = state.ewma["BTC"].annualised() if "BTC" in state.ewma else None
        vol = annual if annual and annual > 0 else None
        seen.setdefault(quote.ts, set()).add((state.marks["BTC"], vol, "BTC" in state.stale))
    return seen


def test_a_restart_changes_no_mark_or_volatility(kafka_bootstrap: str, tmp_path: Path) -> None:
    with chaos(kafka_bootstrap, tmp_path, partitions=2) as c:
        out = c.collect(("market-broadcast", "dlq"))
        worker = c.start()
        t0 = scenario.start_time()
        market = scenario.market(c, t0)
        c.produce(market)
        c.wait_count(out, "market-broadcast", 3 * 2, timeout_s=90)

        rng = random.Random(11)
        price, inputs = scenario.BTC, []
        for second in range(1, SECONDS + 1):
            price *= 1 + rng.uniform(-4e-3, 4e-3)
            sources = {"binance": price * (1 + rng.uniform(-3e-4, 3e-4))}
            inputs.append(scenario.quotes(c, t0 + timedelta(seconds=second), price, sources))
        half = t0 + timedelta(seconds=SECONDS // 2)
        end = t0 + timedelta(seconds=SECONDS)

        c.produce([q for batch in inputs[: SECONDS // 2] for q in batch])
        out.wait(lambda x: any(u.ts == half for u in _marks(x)), 60, "the first half's marks")
        c.kill(worker)
        c.start()
        c.produce([q for batch in inputs[SECONDS // 2 :] for q in batch])
        out.wait(lambda x: any(u.ts == end for u in _marks(x)), 90, "the last mark")
        out.settle(quiet_s=2.0, timeout_s=30)

        every = [item.record for batch in [market, *inputs] for item in batch]
        offline = _offline([q for q in every if isinstance(q, r.OraclePrice)])
        after = [u for u in _marks(out) if u.ts > half]
        assert len(after) >= SECONDS // 4, len(after)
        for u in after:
            assert (u.mark, u.ewma_vol, u.stale) in offline[u.ts], (u.ts, u, offline[u.ts])
        assert not out.records["dlq"]
