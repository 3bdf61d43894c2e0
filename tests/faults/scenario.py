"""Inputs of the fault tests: one BTC perpetual, oracle quotes, deposits and seeded random fills.

Fills move only the settlement currency (USD) and deposits only USDC, and every account gets a
deposit large enough that no fill takes it near its maintenance margin: the tests are about
applying each input exactly once, not about the margin states.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from streams import records as r
from streams.accounts.portfolio import PortfolioRecord
from tests.faults.chaos import Chaos, Input, Sent
from tests.streams.worker_harness import Collector

PERP = "BTC-PERPETUAL"
SOURCES = ("deribit", "binance", "chainlink")
BTC = 100_000.0
DEPOSIT = 5_000_000.0


def start_time() -> datetime:
    """Event time of the scenarios: a few minutes ago, whole milliseconds (Avro's precision)."""
    return datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=5)


def accounts(n: int) -> list[str]:
    """n account names."""
    return [f"acct-{i:04d}" for i in range(n)]


def quotes(
    c: Chaos,
    ts: datetime,
    btc: float,
    sources: dict[str, float] | None = None,
    weights: dict[str, float] | None = None,
) -> list[Input]:
    """BTC from every source (at ``btc`` unless ``sources`` says otherwise; weight 1 unless
    ``weights`` says otherwise) and USDC from two."""
    prices = {s: btc for s in SOURCES} | (sources or {})
    out = [
        c.encode(
            "oracle-prices",
            "BTC",
            r.OraclePrice(
                source=s, underlying="BTC", price=p, weight=(weights or {}).get(s, 1.0), ts=ts
            ),
        )
        for s, p in prices.items()
    ]
    out += [
        c.encode(
            "oracle-prices", "USDC", r.OraclePrice(source=s, underlying="USDC", price=1.0, ts=ts)
        )
        for s in SOURCES[:2]
    ]
    return out


def market(c: Chaos, ts: datetime) -> list[Input]:
    """The perpetual's reference data and a first mark for BTC and USDC."""
    perp = r.InstrumentRecord(name=PERP, kind="PERPETUAL", underlying="BTC", ts=ts)
    return [c.encode("instruments", PERP, perp), *quotes(c, ts, BTC)]


def deposit(c: Chaos, account: str, ts: datetime, amount: float = DEPOSIT) -> Input:
    """A USDC deposit."""
    transfer = r.CollateralTransfer(
        transfer_id=f"dep-{account}",
        account=account,
        asset="USDC",
        amount=amount,
        kind="DEPOSIT",
        ts=ts,
    )
    return c.encode("collateral", account, transfer)


def fill_record(i: int, account: str, rng: random.Random, ts: datetime) -> r.Fill:
    """The i-th random fill: a small trade near 100,000 with a fee (or a rebate)."""
    return r.Fill(
        fill_id=f"fill-{i:06d}",
        account=account,
        instrument=PERP,
        side=rng.choice(("BUY", "SELL")),
        qty=rng.randint(1, 50) / 1000,
        price=BTC + rng.randint(-2000, 2000) / 2,
        fee=rng.randint(-10, 100) / 100,
        liquidity=rng.choice(("MAKER", "TAKER")),
        ts=ts,
    )


def fills(c: Chaos, names: list[str], n: int, t0: datetime, seed: int = 1) -> list[Input]:
    """n seeded random fills over the accounts, one event-time millisecond apart."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        account = rng.choice(names)
        record = fill_record(i, account, rng, t0 + timedelta(milliseconds=i))
        out.append(c.encode("fills", account, record))
    return out


def open_accounts(c: Chaos, out: Collector, names: list[str], t0: datetime) -> list[Sent]:
    """Publish the market, wait for its broadcast to every partition, deposit to every account
    and wait until the table holds every deposit (so that no fill meets an empty account)."""
    sent = c.produce(market(c, t0))
    want = 3 * c.settings.partitions  # the instrument, the BTC mark, the USDC mark
    c.wait_count(out, "market-broadcast", want, timeout_s=90)
    deposits = c.produce(deposit(c, a, t0 + timedelta(milliseconds=1)) for a in names)

    def funded(table: dict[str, PortfolioRecord]) -> bool:
        return all(a in table and table[a].collateral.get("USDC") == DEPOSIT for a in names)

    c.wait_table(funded, timeout_s=90, what="every deposit in the table")
    return sent + deposits
