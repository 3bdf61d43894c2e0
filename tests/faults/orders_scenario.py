"""Inputs of the kill acceptance test: a deterministic BTC crash that sends liquidation orders,
insurance claims and ADL orders, with nobody filling any order (no feedback).

Event times (t0 a few minutes ago):

- t0: the perpetual and a first mark (BTC 100,000 from three sources, USDC 1 from two);
- t0 + 1 ms: a USDC deposit to every account;
- t0 + 100 ms + i ms: the fills (the i-th fill): random small trades of well-funded accounts,
  then one opening trade of each leveraged account;
- t0 + 6 s, the pre-crash tick: every source again at the same prices. It is more than
  ``adl.candidate_interval_s`` (5 s) after any earlier market update (a partition may handle the
  first mark after its first deposits: the worker reads the broadcast and the deposits
  concurrently), so each partition publishes its ADL candidates (the shorts, sold at 100,500,
  are in profit at 100,000). Its first quotes find the others older than the oracle's max age
  (5 s): the mark is briefly STALE, the same in every run;
- t0 + 8 s, the crash tick: BTC at 70,000 from every source (the mark moves on the second
  quote, the weighted median of the kept ones), USDC at 1. Less than
  ``adl.candidate_interval_s`` (5 s) after the pre-crash tick, so no partition publishes new
  candidates: the fund decides ADL on the candidates of the pre-crash tick only.

Every quote of a tick has the tick's time and the crash is less than the oracle's max age after
the pre-crash tick, so no mark is STALE when it matters (a STALE mark holds back orders and
claims).

The accounts:

- ``safe-*``: 5,000,000 USDC, random small trades (they stay HEALTHY);
- ``liq-*``: long 1 BTC bought at 100,000 with 33,000 to 39,000 USDC: after the crash their
  equity is positive but below MM: LIQUIDATION, liquidation orders;
- ``bk-*``: long 1 to 1.6 BTC bought at 100,000 with 20,000 to 26,000 USDC: after the crash their
  equity is negative: BANKRUPT, an insurance claim each. The fund is empty (no liquidation fee
  ever reaches it: nobody fills the orders), so each claim is a SHORTFALL closed by ADL against
  the profitable shorts among the candidates;
- ``short-*``: short 0.5 to 2.8 BTC sold at 100,500 with 200,000 USDC, spread over every
  partition: the ADL candidates (in profit before and after the crash).

Why ADL is deterministic: each claim consumes the best candidates left, so the order in which
the fund reads the claims decides which counterparty each one meets. Claims of several account
partitions interleave on the (single-partition) claims topic as the worker happens to handle
its partitions, so every bankrupt account is on ONE partition (``BANKRUPT_PARTITION``, by the
producer's CRC32 partitioner): one market update gives their claims in the partition's row
order, in one batch. The shorts cover several times the bankrupt quantity, so no position is
left pending (a pending position goes to the book on a wall-clock timer, which is racy).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from streams import records as r
from tests.faults import scenario
from tests.faults.chaos import Chaos, Input

PERP = scenario.PERP
BTC = scenario.BTC
CRASH = 70_000.0
SHORT_PRICE = 100_500.0
BANKRUPT_PARTITION = 3
PRE_CRASH = timedelta(seconds=6)
CRASH_AT = timedelta(seconds=8)


def partition_of(key: str, partitions: int) -> int:
    """The partition librdkafka's default partitioner (consistent_random: CRC32) gives a key."""
    return zlib.crc32(key.encode()) % partitions


@dataclass(frozen=True)
class Plan:
    """The accounts (name -> USDC deposit) and the fills, as records."""

    deposits: dict[str, float]
    fills: list[r.Fill]

    def names(self, prefix: str) -> list[str]:
        """The accounts whose name starts with a prefix."""
        return [a for a in self.deposits if a.startswith(prefix)]


def _named(prefix: str, n: int, partitions: int, on: int | None = None) -> list[str]:
    """n account names with a prefix, all on partition ``on`` if given."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        name = f"{prefix}-{i:04d}"
        if on is None or partition_of(name, partitions) == on:
            out.append(name)
        i += 1
    return out


def _spread(prefix: str, per_partition: int, partitions: int) -> list[str]:
    """Names with a prefix, ``per_partition`` on each partition."""
    return [
        n for p in range(partitions) for n in _named(f"{prefix}{p}", per_partition, partitions, p)
    ]


def _fill(i: int, account: str, side: str, qty: float, price: float, ts: datetime) -> r.Fill:
    return r.Fill(
        fill_id=f"fill-{i:06d}",
        account=account,
        instrument=PERP,
        side=side,
        qty=qty,
        price=price,
        fee=0.0,
        liquidity="TAKER",
        ts=ts,
    )


def plan(
    t0: datetime,
    partitions: int,
    safe: int = 120,
    random_fills: int = 3000,
    liquidating: int = 16,
    bankrupt: int = 4,
    shorts_per_partition: int = 3,
    seed: int = 7,
) -> Plan:
    """The scenario's accounts and fills (see the module's docstring)."""
    rng = random.Random(seed)
    first = t0 + timedelta(milliseconds=100)
    safe_names = [f"safe-{i:04d}" for i in range(safe)]
    liq = _named("liq", liquidating, partitions)
    bk = _named("bk", bankrupt, partitions, BANKRUPT_PARTITION)
    shorts = _spread("short", shorts_per_partition, partitions)
    deposits = {a: scenario.DEPOSIT for a in safe_names}
    fills = []
    for i in range(random_fills):
        account = rng.choice(safe_names)
        fills.append(scenario.fill_record(i, account, rng, first + timedelta(milliseconds=i)))
    i = random_fills
    for k, a in enumerate(liq):
        deposits[a] = 33_000.0 + 6_000.0 * k / max(liquidating - 1, 1)
        fills.append(_fill(i, a, "BUY", 1.0, BTC, first + timedelta(milliseconds=i)))
        i += 1
    for k, a in enumerate(bk):
        deposits[a] = 20_000.0 + 2_000.0 * k
        qty = 1.0 + 0.2 * k
        fills.append(_fill(i, a, "BUY", qty, BTC, first + timedelta(milliseconds=i)))
        i += 1
    for k, a in enumerate(shorts):
        deposits[a] = 200_000.0
        qty = round(0.5 + 0.1 * k, 3)
        fills.append(_fill(i, a, "SELL", qty, SHORT_PRICE, first + timedelta(milliseconds=i)))
        i += 1
    return Plan(deposits, fills)


def market(c: Chaos, t0: datetime) -> list[Input]:
    """The perpetual and the first mark."""
    return scenario.market(c, t0)


def deposits(c: Chaos, p: Plan, t0: datetime) -> list[Input]:
    """A USDC deposit to every account."""
    ts = t0 + timedelta(milliseconds=1)
    return [scenario.deposit(c, a, ts, amount) for a, amount in p.deposits.items()]


def fills(c: Chaos, p: Plan) -> list[Input]:
    """The fills, encoded."""
    return [c.encode("fills", f.account, f) for f in p.fills]


def pre_crash(c: Chaos, t0: datetime) -> list[Input]:
    """Every source again at the same prices (each partition publishes its candidates)."""
    return scenario.quotes(c, t0 + PRE_CRASH, BTC)


def crash(c: Chaos, t0: datetime) -> list[Input]:
    """BTC at 70,000 from every source."""
    return scenario.quotes(c, t0 + CRASH_AT, CRASH)
