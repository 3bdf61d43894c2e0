"""Memory benchmark: the resident size of one worker holding 100,000 accounts.

Seeding 100,000 accounts through the input topics would take minutes of worker time, so the
accounts are written where a worker finds them when it takes over partitions: its portfolio
table's changelog (one record per account, 10 positions and USDC collateral each, as the table
holds them after that many fills, plus each partition's market state, all built by the same code
the worker runs: bench/inprocess.py). One `spma worker` process then starts, restores the table
from the changelog, and on a deposit to each partition rebuilds that partition's book from the
table; its resident size (VmRSS) is read once every partition has answered. So what is measured
is a real worker after a takeover of 100,000 accounts: Python, Faust, the memory store holding
every table value, the records and the eight books.

Beside it, the same 100,000 records and books are built in this process and measured (table
values in bytes, the books' numpy arrays) to show where the memory goes.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.inprocess import Partitions, account_records, market_exchange, partition_of
from bench.pipeline_kit import PARTITIONS, Pipeline
from bench.report import Row, publish
from streams.market.state import market_to_dict
from streams.market.table import LIVE_KEY

ACCOUNTS = 100_000
POSITIONS = 10
TARGET_GIB = 2.0
MAX_WAIT_S = 300.0
SAMPLE = 400


def create_changelog(pipe: Pipeline, app_id: str) -> str:
    """Create the portfolio table's changelog topic (the worker would, but it is written first)."""
    name = pipe.settings.model_copy(update={"app_id": app_id}).changelog_topic("portfolios")
    admin = AdminClient(pipe.settings.kafka_client_config())
    futures = admin.create_topics(
        [NewTopic(name, PARTITIONS, 1, config={"cleanup.policy": "compact"})]
    )
    for fut in futures.values():
        fut.result(30)
    return name


def run(log_dir: Path) -> dict[str, Any]:
    """Seed the changelog, start the worker, trigger every partition, check a sample of the
    accounts came back, read its RSS."""
    pipe = Pipeline.start(log_dir)
    out: dict[str, Any] = {}
    try:
        ex = market_exchange()
        parts = Partitions.seeded(PARTITIONS, ex)
        records = account_records(ACCOUNTS, POSITIONS, parts.instruments, PARTITIONS)
        app_id = f"bench-mem-{int(time.time())}"
        start = time.perf_counter()
        out["table_value_bytes"] = seed_changelog(
            pipe, create_changelog(pipe, app_id), parts, records
        )
        out["seed_s"] = time.perf_counter() - start
        pipe.exchange = ex
        pipe.start_worker(app_id)
        status = pipe.listener(["margin-status"], keep_values=True)
        started = time.perf_counter()
        out["wake_rounds"], out["answered"] = wake(pipe, status, records)
        out["restore_and_rebuild_s"] = time.perf_counter() - started
        out["worker_rss"] = pipe.rss_bytes()
        out["restored_share"] = _restored_share(pipe, status, records)
        status.close()
    finally:
        pipe.stop()
    out.update(_in_process(parts, records))
    return out


def seed_changelog(pipe: Pipeline, topic: str, parts: Partitions, records: list[Any]) -> int:
    """Write each partition's market state and every account record to the changelog, one
    record per batch (Tansu 0.6 can report a partition's end short of records batched together,
    and the worker's restore would then stop early); the bytes written."""
    producer = Producer(
        {
            **pipe.settings.kafka_client_config(),
            "linger.ms": 0,
            "batch.num.messages": 1,
            "log_level": 3,
        }
    )
    items = [
        (
            json.dumps(LIVE_KEY.format(partition=proc.partition)).encode(),
            orjson.dumps(market_to_dict(proc.market)),
            proc.partition,
        )
        for proc in parts.processors
    ]
    items += [
        (json.dumps(r.account).encode(), orjson.dumps(r.to_dict()), r.partition) for r in records
    ]
    for key, value, partition in items:
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(300)
    return sum(len(v) for _, v, _ in items)


def wake(pipe: Pipeline, status: Any, records: list[Any]) -> tuple[int, bool]:
    """A small deposit to an account of each partition makes the worker rebuild that
    partition's book; repeated (another account) for a partition that stays silent, as the
    first input of a partition read during the worker's start-up can go unanswered on the
    embedded broker. Returns the rounds used and whether every partition answered."""
    by_partition: dict[int, list[str]] = {}
    for r in records:
        by_partition.setdefault(partition_of(r.account, PARTITIONS), []).append(r.account)
    answered: set[int] = set()
    deadline = time.monotonic() + MAX_WAIT_S
    rounds = 0
    while len(answered) < PARTITIONS and time.monotonic() < deadline:
        wanted = {by_partition[p][rounds]: p for p in by_partition if p not in answered}
        pipe.send_raw(pipe.deposits(list(wanted), amount=1.0, tag="wake"))
        rounds += 1
        until = time.monotonic() + 20.0
        while time.monotonic() < min(until, deadline) and len(answered) < PARTITIONS:
            seen = {k.decode() for k, _ in list(status.seen)}
            answered |= {p for a, p in wanted.items() if a in seen}
            time.sleep(0.1)
    return rounds, len(answered) == PARTITIONS


def _restored_share(pipe: Pipeline, status: Any, records: list[Any]) -> float:
    """Share of a random sample of accounts the worker holds: each gets a small deposit, and
    its status's equity shows its seeded collateral (a lost account would show 1 USDC)."""
    sample = [r.account for r in random.Random(4).sample(records, SAMPLE)]
    base = status.count(b"mem-")
    pipe.send_raw(pipe.deposits(sample, amount=1.0, tag="check"))
    status.wait(b"mem-", base + len(sample), MAX_WAIT_S)
    wanted = set(sample)
    found = 0
    for raw in list(status.values):
        st = pipe.codec.decode("margin-status", raw)
        if st.account in wanted and st.reason == "TRANSFER" and st.equity > 1e6:  # type: ignore[attr-defined]
            found += 1
    return found / len(sample)


def _in_process(parts: Partitions, records: list[Any]) -> dict[str, Any]:
    """The same accounts' books in this process: the numpy arrays' bytes."""
    by_partition: dict[int, dict[str, Any]] = {}
    for rec in records:
        by_partition.setdefault(rec.partition, {})[rec.account] = rec
    start = time.perf_counter()
    for proc in parts.processors:
        proc.load(by_partition.get(proc.partition, {}))
    rebuild_s = time.perf_counter() - start
    arrays = 0
    for proc in parts.processors:
        book = proc.book
        arrays += book.cost.nbytes + book.collateral.nbytes
        for ub in book.underlyings.values():
            matrix = ub.exposures()
            arrays += ub.pnl.nbytes + ub.value.nbytes + ub.delta.nbytes
            arrays += ub.basis.nbytes + ub.short_units.nbytes
            arrays += matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    return {"in_process_rebuild_s": rebuild_s, "book_array_bytes": arrays}


def rows_of(f: dict[str, Any]) -> list[Row]:
    """The table."""
    gib = 2**30
    return [
        Row(
            f"worker RSS holding {ACCOUNTS:,} accounts ({POSITIONS} positions each)",
            f["worker_rss"] / gib,
            "GiB",
            TARGET_GIB,
            ratio="" if f["answered"] else "not every partition answered in time",
        ),
        Row("  per account", f["worker_rss"] / ACCOUNTS / 1024, "KiB"),
        Row("  accounts found in the worker (sample of 400)", 100.0 * f["restored_share"], "%"),
        Row("  table values (orjson) the memory store holds", f["table_value_bytes"] / gib, "GiB"),
        Row("  books' numpy arrays (8 partitions, in-process)", f["book_array_bytes"] / gib, "GiB"),
        Row(
            "restore the table and rebuild 8 books (worker)",
            f["restore_and_rebuild_s"],
            "s",
            ratio=f"{f['wake_rounds']} round(s) of wake-up deposits",
        ),
    ]


def main() -> dict[str, Any]:
    """Run, print the table, write reports/bench_memory.json."""
    with tempfile.TemporaryDirectory(prefix="spma-bench-mem-") as tmp:
        figures = run(Path(tmp))
    publish(
        "memory",
        "memory (one worker, 100,000 accounts restored from its table changelog)",
        rows_of(figures),
        {"figures": figures},
    )
    return figures


if __name__ == "__main__":
    main()
