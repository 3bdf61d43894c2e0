"""What-if and pre-trade benchmark: the code the worker's HTTP handlers run for one request, on a
worker-like holding of 100,000 accounts (8 partitions' processors, the demo exchange's market
and instruments, 10 positions an account).

Each request is timed from its raw body to its encoded answer, as the view runs it after routing:
the account's table value decoded (PortfolioRecord.from_json), the body parsed and checked, the
engine's what-if on the partition's scratch book (both margins explained), the answer encoded.
Printed: p50/p99 server-side time and requests a second on one core, beside Deribit's published
rate limit for ``private/simulate_portfolio`` (about one call a second, "due to computational
complexity"), and the same requests as HTTP round trips on loopback (aiohttp, keep-alive; the
same handler code behind a minimal server, not the Faust worker). The garbage collector's
thresholds are the worker's (streams/agents/tuning.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from aiohttp import ClientSession, web

from bench.inprocess import Partitions, account_records
from bench.report import Row, publish
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.accounts.whatif import RequestError, pre_trade_answer, what_if_answer
from streams.agents.tuning import tune_gc

ACCOUNTS = 100_000
POSITIONS = 10
PARTITIONS = 8
REQUESTS = 3_000
HTTP_REQUESTS = 1_000
TARGET_P99_MS = 2.0
DERIBIT_PER_S = 1.0
"""Deribit's published rate for private/simulate_portfolio: about one call a second."""

Answer = Callable[[AccountProcessor, str, bytes], dict[str, Any]]


def holding() -> tuple[Partitions, list[PortfolioRecord]]:
    """The processors with every account loaded, and the records (as the table holds them)."""
    parts = Partitions.seeded(PARTITIONS)
    records = account_records(ACCOUNTS, POSITIONS, parts.instruments, PARTITIONS)
    by_partition: dict[int, dict[str, PortfolioRecord]] = {}
    for rec in records:
        by_partition.setdefault(rec.partition, {})[rec.account] = rec
    for proc in parts.processors:
        proc.load(by_partition.get(proc.partition, {}))
    return parts, records


def requests(parts: Partitions, records: list[PortfolioRecord], count: int, seed: int) -> list[Any]:
    """(record JSON, account, partition, what-if body, pre-trade body) for random accounts."""
    rng = np.random.default_rng(seed)
    snap = parts.processors[0].book.market
    linear = [n for n in parts.instruments if not n.endswith(("-C", "-P", "-INV"))]
    out = []
    for i in rng.integers(0, len(records), size=count).tolist():
        rec = records[i]
        name = linear[int(rng.integers(0, len(linear)))]
        mark = snap.underlyings[name.split("-")[0]].mark
        qty = float(rng.normal(0.0, 1.0)) * 20_000.0 / mark
        what_if = {
            "fills": [{"instrument": name, "qty": qty, "price": mark, "fee": 1.0}],
            "transfers": [{"asset": "USDC", "amount": -50_000.0}],
        }
        side = "buy" if qty > 0 else "sell"
        order = {"instrument": name, "side": side, "qty": abs(qty), "price": mark}
        out.append(
            (rec.to_json(), rec.account, rec.partition, orjson.dumps(what_if), orjson.dumps(order))
        )
    return out


def handle(parts: Partitions, answer: Answer, stored: bytes, body: bytes) -> bytes:
    """What the view runs for one request once routed: the record, the answer, its bytes."""
    record = PortfolioRecord.from_json(stored)
    proc = parts.processors[record.partition]
    try:
        return orjson.dumps(answer(proc, record.account, body))
    except RequestError as exc:
        return orjson.dumps(exc.body(record.account))


def server_times(
    parts: Partitions, reqs: list[Any], answer: Answer, slot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and CPU seconds of each request's server-side handling (after a warm-up of
    every partition); the CPU time leaves out what other processes took of the core."""
    for stored, _, _, *bodies in reqs[:50]:
        handle(parts, answer, stored, bodies[slot])
    wall, cpu = [], []
    for stored, _, _, *bodies in reqs:
        start, start_cpu = time.perf_counter(), time.thread_time()
        handle(parts, answer, stored, bodies[slot])
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return np.array(wall), np.array(cpu)


async def _round_trips(
    parts: Partitions, reqs: list[Any], answer: Answer, slot: int
) -> list[float]:
    """Seconds of each request as an HTTP round trip on loopback (one client, keep-alive)."""
    stored = {account: raw for raw, account, *_ in reqs}

    async def view(request: web.Request) -> web.Response:
        account = request.match_info["account"]
        body = handle(parts, answer, stored[account], await request.read())
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/accounts/{account}/{action}", view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    times = []
    try:
        async with ClientSession() as client:
            for _, account, _, *bodies in reqs:
                url = f"http://127.0.0.1:{port}/accounts/{account}/x"
                start = time.perf_counter()
                async with client.post(url, data=bodies[slot]) as resp:
                    await resp.read()
                times.append(time.perf_counter() - start)
    finally:
        await runner.cleanup()
    return times[50:]


def run() -> dict[str, Any]:
    """Every figure of the benchmark (the garbage collector tuned as the worker tunes it)."""
    tune_gc()
    start = time.perf_counter()
    parts, records = holding()
    figures: dict[str, Any] = {"load_s": time.perf_counter() - start, "accounts": len(records)}
    reqs = requests(parts, records, REQUESTS, seed=3)
    for slot, (name, answer) in enumerate(
        (("what_if", what_if_answer), ("pre_trade", pre_trade_answer))
    ):
        wall, cpu = server_times(parts, reqs, answer, slot)
        figures[name], figures[f"{name}_cpu"] = _summary(wall), _summary(cpu)
        rtt = asyncio.run(_round_trips(parts, reqs[:HTTP_REQUESTS], answer, slot))
        figures[f"{name}_http"] = _summary(np.array(rtt))
    moved = [(s, a, p, orjson.dumps({"moves": {"BTC": -0.1}}), o) for s, a, p, _, o in reqs[:300]]
    figures["what_if_move"] = _summary(server_times(parts, moved, what_if_answer, 0)[0])
    return figures


def _summary(seconds: np.ndarray) -> dict[str, float]:
    """p50 and p99 in ms, and requests a second on one core (1 / mean)."""
    return {
        "p50_ms": float(np.percentile(seconds, 50)) * 1e3,
        "p99_ms": float(np.percentile(seconds, 99)) * 1e3,
        "per_s": float(1.0 / seconds.mean()),
    }


def rows_of(f: dict[str, Any]) -> list[Row]:
    """The table's rows."""
    rows = []
    for name, label in (("what_if", "what-if"), ("pre_trade", "pre-trade")):
        s, c, h = f[name], f[f"{name}_cpu"], f[f"{name}_http"]
        rows += [
            Row(f"{label} server time p50 (100k accounts)", s["p50_ms"], "ms"),
            Row(f"{label} server time p99", s["p99_ms"], "ms", TARGET_P99_MS),
            Row(
                f"{label} server CPU time p50 / p99",
                c["p50_ms"],
                "ms",
                ratio=f"p99 {c['p99_ms']:.2f} ms",
            ),
            Row(
                f"{label} requests a second (one core)",
                s["per_s"],
                "/s",
                ratio=f"{s['per_s'] / DERIBIT_PER_S:,.0f}x Deribit simulate_portfolio (~1/s)",
            ),
            Row(f"{label} HTTP round trip p50 (loopback)", h["p50_ms"], "ms"),
            Row(f"{label} HTTP round trip p99 (loopback)", h["p99_ms"], "ms"),
        ]
    m = f["what_if_move"]
    rows += [
        Row("what-if with BTC -10% server time p50", m["p50_ms"], "ms"),
        Row("what-if with BTC -10% server time p99", m["p99_ms"], "ms"),
    ]
    return rows


def main() -> dict[str, Any]:
    """Run, print the table, write reports/bench_whatif.json."""
    figures = run()
    title = (
        f"what-if and pre-trade on {figures['accounts']:,} accounts x {POSITIONS} positions "
        f"({PARTITIONS} partitions; loaded in {figures['load_s']:.0f} s)"
    )
    publish("whatif", title, rows_of(figures), {"figures": figures})
    return figures


if __name__ == "__main__":
    main()
