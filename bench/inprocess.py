"""The worker's per-partition state without Kafka: the demo exchange's market applied the way the
market agent and the account agent apply it, account processors, and seeded portfolio records.

Used by the memory benchmark (the same records it writes to a worker's table changelog, and the
in-process measure beside the worker's) and by the pipeline benchmark's per-stage split of one
fill's cost inside the worker (decode, processor, encode, table value).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.portfolio import PortfolioRecord, PositionRecord
from streams.accounts.processor import AccountProcessor
from streams.market.state import MarketState
from streams.tools.exchange import SPOTS, Exchange


def partition_of(key: str, partitions: int) -> int:
    """The partition confluent-kafka's default partitioner (librdkafka consistent_random:
    CRC32 of the key) gives a keyed record, as the fills producer would place it."""
    return zlib.crc32(key.encode()) % partitions


def market_exchange(now: datetime | None = None) -> Exchange:
    """The demo exchange's instruments and market inputs (not sent anywhere)."""
    start = (now or datetime.now(tz=UTC)).replace(microsecond=0) - timedelta(minutes=1)
    ex = Exchange(start)
    ex.list_instruments()
    ex.publish_market()
    return ex


@dataclass
class Partitions:
    """The market agent's state and one account processor per partition, market applied."""

    market: MarketState
    processors: list[AccountProcessor]
    instruments: list[str]

    @classmethod
    def seeded(cls, partitions: int, ex: Exchange | None = None) -> Partitions:
        """Every market input through the market agent, each update to every processor."""
        ex = ex or market_exchange()
        agent = MarketState()
        procs = [AccountProcessor(p, MarketState()) for p in range(partitions)]
        handlers = {
            r.OraclePrice: agent.on_price,
            r.BookDepth: agent.on_depth,
            r.VolSurfaceRecord: agent.on_vol,
            r.InstrumentRecord: agent.on_instrument,
        }
        offset = 0
        for _, _, record in ex.inputs:
            update = handlers[type(record)](record, f"seed:{offset}")  # type: ignore[operator]
            offset += 1
            if update is None:
                continue
            for proc in procs:
                proc.on_market(update, InputRef("market-broadcast", proc.partition, offset))
        names = [rec.name for t, _, rec in ex.inputs if t == "instruments"]  # type: ignore[attr-defined]
        return cls(agent, procs, names)


def account_records(
    accounts: int, positions: int, names: list[str], partitions: int, seed: int = 1
) -> list[PortfolioRecord]:
    """Funded accounts with `positions` small positions each over the listed instruments (as
    the table holds them after that many fills: offsets and recent fill ids included)."""
    rng = np.random.default_rng(seed)
    linear = [n for n in names if not n.endswith("-INV")]
    out = []
    for i in range(accounts):
        account = f"mem-{i:06d}"
        picks = rng.choice(len(linear), size=min(positions, len(linear)), replace=False)
        held = {}
        for j in picks.tolist():
            name = linear[j]
            und = name.split("-")[0]
            option = name.endswith(("-C", "-P"))
            qty = float(rng.normal(0.0, 1.0)) * 10_000.0 / SPOTS[und]
            held[name] = PositionRecord(qty, SPOTS[und] * (0.05 if option else 1.0), 0.0)
        record = PortfolioRecord(
            account,
            positions=held,
            collateral={"USDC": 5e6},
            offsets={"fills": positions, "collateral": 0},
            recent_ids=[f"dep-{account}", *(f"f-{account}-{k}" for k in range(positions))],
            partition=partition_of(account, partitions),
            last_ratio=None,
        )
        out.append(record)
    return out


def _funded(partitions: int, accounts: int, ts: datetime) -> tuple[Partitions, list[str]]:
    """Seeded partitions with `accounts` funded accounts."""
    parts = Partitions.seeded(partitions)
    names = [f"st-{i:05d}" for i in range(accounts)]
    for i, a in enumerate(names):
        proc = parts.processors[partition_of(a, partitions)]
        deposit = r.CollateralTransfer(
            transfer_id=f"d-{a}", account=a, asset="USDC", amount=5e6, kind="DEPOSIT", ts=ts
        )
        proc.on_transfer(deposit, InputRef("spma.collateral", proc.partition, i))
    return parts, names


def _random_fills(
    parts: Partitions, names: list[str], count: int, ts: datetime, seed: int
) -> list[r.Fill]:
    """Taker fills cycling over the accounts, on random linear instruments and options."""
    rng = np.random.default_rng(seed)
    linear = [n for n in parts.instruments if not n.endswith("-INV")]
    out = []
    for i in range(count):
        name = linear[int(rng.integers(0, len(linear)))]
        und = name.split("-")[0]
        option = name.endswith(("-C", "-P"))
        out.append(
            r.Fill(
                fill_id=f"f-{seed}-{i}",
                account=names[i % len(names)],
                instrument=name,
                side="BUY" if rng.random() < 0.5 else "SELL",
                qty=10_000.0 / SPOTS[und] * float(rng.uniform(0.1, 1.0)),
                price=SPOTS[und] * (0.05 if option else 1.0),
                liquidity="TAKER",
                ts=ts,
            )
        )
    return out


def fill_stages(
    fills: int = 10_000, accounts: int = 2_000, partitions: int = 8, wave: int = 32
) -> dict[str, float]:
    """Seconds per fill of each step the worker's own code takes (no Kafka): Avro decoding, the
    processor one fill at a time (record, book, margin, status), encoding the outputs, the table
    value (orjson); and, apart, the processor on fills in waves of `wave` distinct accounts a
    partition, as the account agent settles them under load (apply each, one margin pass)."""
    import time

    from infra.settings import Settings
    from streams.codec import codec_from_settings

    ts = datetime.now(tz=UTC) - timedelta(seconds=1)
    parts, names = _funded(partitions, accounts, ts)
    codec = codec_from_settings(Settings())
    raw = [(f.account, codec.encode("fills", f)) for f in _random_fills(parts, names, fills, ts, 1)]
    spent = dict.fromkeys(("decode", "processor", "encode", "table_value"), 0.0)
    clock = time.perf_counter
    for i, (a, data) in enumerate(raw):
        t0 = clock()
        fill = codec.decode("fills", data)
        t1 = clock()
        proc = parts.processors[partition_of(a, partitions)]
        outputs = proc.on_fill(fill, InputRef("spma.fills", proc.partition, i))  # type: ignore[arg-type]
        t2 = clock()
        for out in outputs:
            codec.encode(out.topic, out.record)
        t3 = clock()
        proc.records[a].to_json()
        t4 = clock()
        spent["decode"] += t1 - t0
        spent["processor"] += t2 - t1
        spent["encode"] += t3 - t2
        spent["table_value"] += t4 - t3
    stages = {k: v / fills for k, v in spent.items()}
    later = _random_fills(parts, names, fills, ts, 2)
    stages["processor_waves"] = _in_waves(parts, later, wave, first_offset=fills)
    return stages


def _in_waves(parts: Partitions, fills: list[r.Fill], wave: int, first_offset: int) -> float:
    """Seconds per fill of the processor on fills in waves of `wave` accounts a partition."""
    import time

    partitions = len(parts.processors)
    spent, offset, chunk = 0.0, first_offset, wave * partitions
    for start in range(0, len(fills), chunk):
        by_partition: dict[int, list[tuple[r.Fill, InputRef]]] = {}
        for fill in fills[start : start + chunk]:
            p = partition_of(fill.account, partitions)
            by_partition.setdefault(p, []).append((fill, InputRef("spma.fills", p, offset)))
            offset += 1
        t0 = time.perf_counter()
        for p, items in by_partition.items():
            proc = parts.processors[p]
            applied = [proc.apply_fill(fill, ref) for fill, ref in items]
            proc.settle([a for a in applied if a is not None])
        spent += time.perf_counter() - t0
    return spent / len(fills)
