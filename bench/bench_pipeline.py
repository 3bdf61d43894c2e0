"""Pipeline benchmark: real workers on Apache Kafka and on the embedded Tansu, side by side.

For each broker engine, on a fresh broker of its own:
1. One `spma worker` process; the demo exchange's market seeded through Kafka; accounts funded.
2. Throughput: fills blasted faster than the worker can take them (Avro decoding, the account's
   record and book, its margin, the status encoded and sent, the table write); fills applied a
   second = statuses consumed a second, over the middle 80% of the run (no ramp up or down).
   Then the same with two workers in one group on the 8 partitions (a fresh broker again).
3. Latency: fills paced at 1,000 a second, and at half of what one worker sustains, on fresh
   accounts; each fill's produce time against the arrival of its margin-status (matched per
   account, in order), p50/p99/p999.
4. The raw broker floor (confluent-kafka alone, on a fresh broker of the engine): produce then
   consume the same fill records as fast as possible, and paced at each rate the latency was
   measured at.
5. Where a fill's time goes: the worker's own steps timed in-process (bench/inprocess.py), the
   rest of 1 / rate being Faust, aiokafka, asyncio and the broker.

The broker shares the machine's cores with the workers, the producer and the listener, so two
workers can only gain what the cores they leave free allow.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.inprocess import fill_stages
from bench.pipeline_kit import Pipeline, latencies, paced, summary
from bench.report import Row, publish, times
from infra.broker_engine import Engine
from infra.kafka_broker import missing_tools

THROUGHPUT_FILLS = 20_000
THROUGHPUT_ACCOUNTS = 2_000
LATENCY_RATE = 1_000.0
LATENCY_SECONDS = 5.0
SLOW_SECONDS = 8.0
SLOW_SHARE = 0.5
"""The second latency run's rate, as a share of the sustained rate: the worker stalls now and
then (commits, the table's changelog, garbage collection), and at 80% of its blast rate the
queue those stalls leave does not drain between them."""
WAVE = 32  # accounts a partition in the in-process batch figure (what a busy worker settles)
TARGET_RATE = 20_000.0
TARGET_P99_MS = 25.0
TARGET_SCALING = 1.5
REBALANCE_RATE = 500.0
REBALANCE_SECONDS = 15.0
ENGINE_NAMES = {"kafka": "Apache Kafka", "tansu": "Tansu"}


def steady_rate(times_s: list[float]) -> float:
    """Records a second over the middle 80% of arrival times (no ramp up or down)."""
    t = np.sort(np.array(times_s))
    if t.size < 10:
        return float("nan")
    lo, hi = int(0.1 * t.size), int(0.9 * t.size)
    return float((hi - lo) / max(t[hi] - t[lo], 1e-9))


def broker_floor(log_dir: Path, engine: str, rates: list[float]) -> dict[str, Any]:
    """On a fresh broker of the engine (as the worker's was when it started), produce then
    consume the same fill records with confluent-kafka alone: as fast as it goes, and paced at
    each rate the worker's latency was measured at."""
    pipe = Pipeline.start(log_dir / "floor", engine)
    listen = pipe.listener(["fills"])
    out: dict[str, Any] = {"latency": {}}
    try:
        pipe.exchange = _listing_only(pipe)
        # A fresh JVM runs its first seconds interpreted: warm the broker up first (the worker
        # runs' brokers are warmed by the seeding and the funding).
        warm = [f"wu-{i:05d}" for i in range(THROUGHPUT_ACCOUNTS)]
        pipe.send_raw(pipe.fills(warm, THROUGHPUT_FILLS, seed=4))
        listen.wait(b"wu-", THROUGHPUT_FILLS, 60)
        accounts = [f"fl-{i:05d}" for i in range(THROUGHPUT_ACCOUNTS)]
        blast = pipe.fills(accounts, THROUGHPUT_FILLS, seed=5)
        start = time.perf_counter()
        pipe.send_raw(blast)
        listen.wait(b"fl-", len(blast), 60)
        arrived = [t for k, t in list(listen.seen) if k.startswith(b"fl-")]
        out["rate"] = len(arrived) / max(max(arrived, default=start) - start, 1e-9)
        for n, rate in enumerate(rates):
            prefix = f"f{n}-"
            keys = [f"{prefix}{i:05d}" for i in range(THROUGHPUT_ACCOUNTS)]
            count = int(rate * min(LATENCY_SECONDS, 20_000 / rate))
            records = pipe.fills(keys, count, seed=6 + n)
            sent = paced(pipe, records, rate)
            listen.wait(prefix.encode(), len(records), 30)
            lat = latencies(sent, list(listen.seen), prefix.encode())
            out["latency"][f"{rate:.0f}"] = summary(lat)
    finally:
        listen.close()
        pipe.stop()
    return out


def _listing_only(pipe: Pipeline) -> Any:
    """The demo exchange's instrument list (for fill names), nothing sent."""
    from datetime import UTC, datetime

    from streams.tools.exchange import Exchange

    ex = Exchange(datetime.now(tz=UTC))
    ex.list_instruments()
    return ex


def run(log_dir: Path, engine: str) -> dict[str, Any]:
    """Every pipeline figure on one broker engine."""
    pipe = Pipeline.start(log_dir / "one", engine)
    out: dict[str, Any] = {"engine": engine, "version": pipe.broker.version}
    try:
        pipe.start_worker()
        status = pipe.listener(["margin-status"])
        pipe.seed_market()
        out["ready_s"] = wait_ready(pipe, status, 120)
        out["throughput"] = _throughput(pipe, status)
        sustained = out["throughput"]["rate"]
        slow = max(100.0, round(SLOW_SHARE * sustained, -1))
        out["latency"] = _latency(pipe, status, "lt", LATENCY_RATE, LATENCY_SECONDS)
        out["latency"]["sustainable"] = sustained >= LATENCY_RATE
        out["latency_sustained"] = _latency(pipe, status, "ls", slow, SLOW_SECONDS)
        out["worker_rss_end"] = pipe.rss_bytes()
        status.close()
    finally:
        pipe.stop()
    out["two_workers"] = _two_workers(log_dir / "two", engine)
    out["floor"] = broker_floor(log_dir, engine, [LATENCY_RATE, slow])
    return out


def _two_workers(log_dir: Path, engine: str) -> dict[str, Any]:
    """On a fresh broker: the pause while a second worker joins a busy first one (a rebalance,
    the newcomer's tables recovered from their changelogs), then the throughput of the two."""
    pipe = Pipeline.start(log_dir, engine)
    try:
        pipe.start_worker()
        status = pipe.listener(["margin-status"])
        pipe.seed_market()
        wait_ready(pipe, status, 120)
        figures = {"rebalance": _rebalance(pipe, status)}
        figures.update(_throughput(pipe, status, batches=False))
        status.close()
    finally:
        pipe.stop()
    return figures


def _rebalance(pipe: Pipeline, status: Any) -> dict[str, Any]:
    """Fills paced at REBALANCE_RATE while a second worker starts a second in: the longest gap
    between two statuses (the rebalance's pause) and the latency over the whole run."""
    accounts = fund_accounts(pipe, status, "rb", THROUGHPUT_ACCOUNTS // 2)
    _settle(status)
    fills = pipe.fills(accounts, int(REBALANCE_RATE * REBALANCE_SECONDS), seed=3)
    joiner = threading.Timer(1.0, pipe.start_worker)
    joiner.start()
    sent = paced(pipe, fills, REBALANCE_RATE)
    joiner.join()
    status.wait(b"rb-", len(accounts) + len(fills), 180)
    after = _skip_first(list(status.seen), b"rb-", len(accounts))
    arrivals = np.sort(np.array([t for _, t in after]))
    pause = float(np.diff(arrivals).max()) if arrivals.size > 1 else float("nan")
    return {
        "rate": REBALANCE_RATE,
        "pause_ms": pause * 1e3,
        **summary(latencies(sent, after, b"rb-")),
    }


def wait_ready(pipe: Pipeline, status: Any, timeout_s: float) -> float:
    """Seconds until the worker answers a deposit with a status. A deposit that overtakes the
    market (the market reaches the account agent one hop later, through the broadcast) waits
    unpriced and silently, so a new probe account is tried every 2 s."""
    start = time.monotonic()
    probe = 0
    while time.monotonic() - start < timeout_s:
        pipe.send_raw(pipe.deposits([f"probe-{probe}"]))
        probe += 1
        if status.wait(b"probe-", 1, 2.0):
            return time.monotonic() - start
    raise RuntimeError(f"the worker never answered a deposit in {timeout_s:.0f} s")


def fund_accounts(pipe: Pipeline, status: Any, prefix: str, count: int) -> list[str]:
    """Fresh accounts with a deposit each, waited for (their statuses)."""
    accounts = [f"{prefix}-{i:05d}" for i in range(count)]
    pipe.send_raw(pipe.deposits(accounts))
    if not status.wait(f"{prefix}-".encode(), count, 180):
        raise RuntimeError(f"deposits for {prefix} not all answered")
    return accounts


def _throughput(pipe: Pipeline, status: Any, batches: bool = True) -> dict[str, Any]:
    """Fills a second the workers sustain while they always have a backlog (with `batches`,
    the first worker's mean account batch too)."""
    accounts = fund_accounts(pipe, status, "tp", THROUGHPUT_ACCOUNTS)
    fills = pipe.fills(accounts, THROUGHPUT_FILLS, seed=1)
    before = len(status.seen)
    counted = _batches(pipe) if batches else (0.0, 0.0)
    start = time.perf_counter()
    pipe.send_raw(fills)
    produced = time.perf_counter() - start
    done = status.wait(b"tp-", THROUGHPUT_ACCOUNTS + len(fills), 300)
    arrived = [t for k, t in status.seen[before:] if k.startswith(b"tp-")]
    figures: dict[str, Any] = {}
    if batches:
        inputs, count = (a - b for a, b in zip(_batches(pipe), counted, strict=True))
        figures["batch_mean"] = inputs / max(count, 1.0)
    return {
        **figures,
        "fills": len(fills),
        "answered": len(arrived),
        "complete": done,
        "rate": steady_rate(arrived),
        "overall_rate": len(arrived) / max(max(arrived, default=start) - start, 1e-9),
        "produce_s": produced,
    }


def _batches(pipe: Pipeline) -> tuple[float, float]:
    """The account agent's inputs handled in batches so far, and its batches."""
    return (
        pipe.metric("spma_account_batch_size_sum"),
        pipe.metric("spma_account_batch_size_count"),
    )


def _settle(status: Any, quiet_s: float = 2.0, timeout_s: float = 60.0) -> None:
    """Wait until no status has arrived for quiet_s (the worker has caught up)."""
    deadline = time.monotonic() + timeout_s
    seen, since = len(status.seen), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if len(status.seen) != seen:
            seen, since = len(status.seen), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


def _latency(pipe: Pipeline, status: Any, prefix: str, rate: float, seconds: float) -> dict:
    """Latency of fills paced at `rate` a second for `seconds`, on fresh funded accounts, the
    worker idle when they start."""
    accounts = fund_accounts(pipe, status, prefix, THROUGHPUT_ACCOUNTS)
    _settle(status)
    fills = pipe.fills(accounts, int(rate * seconds), seed=2)
    sent = paced(pipe, fills, rate)
    status.wait(f"{prefix}-".encode(), THROUGHPUT_ACCOUNTS + len(fills), 300)
    after_funding = _skip_first(list(status.seen), f"{prefix}-".encode(), THROUGHPUT_ACCOUNTS)
    return {"rate": rate, **summary(latencies(sent, after_funding, f"{prefix}-".encode()))}


def _skip_first(
    seen: list[tuple[bytes, float]], prefix: bytes, per_key: int
) -> list[tuple[bytes, float]]:
    """Drop each account's first status (its deposit's) so fills match their own."""
    del per_key
    first: set[bytes] = set()
    out = []
    for key, t in seen:
        if not key.startswith(prefix):
            continue
        if key not in first:
            first.add(key)
            continue
        out.append((key, t))
    return out


def rows_of(f: dict[str, Any]) -> list[Row]:
    """The rows of one engine's run, each figure named with the engine."""
    name = ENGINE_NAMES.get(f["engine"], f["engine"])
    tp, floor, two = f["throughput"], f["floor"], f["two_workers"]
    rows = [
        Row(
            f"[{name}] fills applied a second, one worker",
            tp["rate"],
            "/s",
            TARGET_RATE,
            lower=False,
            ratio=f"broker floor {times(1 / tp['rate'], 1 / floor['rate'])}",
        ),
        Row(
            f"[{name}] fills applied a second, two workers",
            two["rate"],
            "/s",
            TARGET_SCALING * tp["rate"],
            lower=False,
            ratio=f"{two['rate'] / tp['rate']:.2f}x one worker (target {TARGET_SCALING}x)",
        ),
        Row(f"[{name}]   raw broker floor: produce + consume", floor["rate"], "/s"),
        Row(
            f"[{name}] a second worker joins: longest gap between statuses",
            two["rebalance"]["pause_ms"],
            "ms",
            ratio=f"p99 {two['rebalance'].get('p99_ms', float('nan')):,.0f} ms over the run "
            f"at {REBALANCE_RATE:,.0f} fills/s",
        ),
    ]
    for lat, label in ((f["latency"], ""), (f["latency_sustained"], " (half of sustained)")):
        base = floor["latency"].get(f"{lat['rate']:.0f}", {})
        note = "" if lat.get("sustainable", True) else "; above what it sustains: the queue grows"
        for pct in ("p50", "p99", "p999"):
            key = f"{pct}_ms"
            target = TARGET_P99_MS if pct == "p99" and lat["rate"] == LATENCY_RATE else None
            ratio = f"broker floor {base.get(key, float('nan')):.1f} ms"
            rows.append(
                Row(
                    f"[{name}] fill -> status {pct} at {lat['rate']:,.0f}/s{label}",
                    lat.get(key, float("nan")),
                    "ms",
                    target if f["engine"] == "kafka" else None,
                    ratio=ratio + (note if pct == "p99" else ""),
                )
            )
    per_fill = 1e6 / tp["rate"]
    rows.append(Row(f"[{name}] a fill's time in the worker (1 / rate)", per_fill, "µs"))
    if "batch_mean" in tp:
        rows.append(Row(f"[{name}]   inputs a batch of the account agent", tp["batch_mean"], ""))
    rows.append(
        Row(f"[{name}] worker resident size after the run", f["worker_rss_end"] / 2**20, "MiB")
    )
    return rows


def stage_rows(stages_in: dict[str, float], per_fill_us: float) -> list[Row]:
    """Where a fill's time goes: our steps in-process, the rest Faust, aiokafka and the broker
    (against the fastest engine's 1 / rate)."""
    stages = dict(stages_in)
    waves = stages.pop("processor_waves", None)
    ours = 1e6 * sum(stages.values())
    rows = [
        Row(f"  our code: {n.replace('_', ' ')} (in-process)", v * 1e6, "µs")
        for n, v in stages.items()
    ]
    if waves is not None:
        label = f"  our code: processor, waves of {WAVE} accounts a partition (in-process)"
        rows.append(Row(label, waves * 1e6, "µs", ratio="the batch path, not in the sum"))
    rest = max(per_fill_us - ours, 0.0)
    rows.append(
        Row(
            "  the rest: Faust, aiokafka, asyncio, the broker",
            rest,
            "µs",
            ratio=f"{rest / per_fill_us:.0%} of a fill (fastest broker)",
        )
    )
    return rows


def side_by_side(runs: list[dict[str, Any]]) -> str:
    """A compact table with one column per broker engine."""
    pick = [
        ("fills/s, one worker", lambda f: f["throughput"]["rate"], "{:,.0f}"),
        ("fills/s, two workers", lambda f: f["two_workers"]["rate"], "{:,.0f}"),
        (
            "two workers / one",
            lambda f: f["two_workers"]["rate"] / f["throughput"]["rate"],
            "{:.2f}x",
        ),
        ("raw broker floor, fills/s", lambda f: f["floor"]["rate"], "{:,.0f}"),
    ]
    for key in ("latency", "latency_sustained"):
        for pct in ("p50", "p99", "p999"):
            pick.append(
                (
                    f"fill->status {pct} ({'1,000/s' if key == 'latency' else 'half sustained'})",
                    lambda f, k=key, p=pct: f[k].get(f"{p}_ms", float("nan")),
                    "{:,.1f} ms",
                )
            )
    pick.append(
        (
            "second worker joins: pause",
            lambda f: f["two_workers"]["rebalance"]["pause_ms"],
            "{:,.0f} ms",
        )
    )
    pick.append(("half of sustained, rate", lambda f: f["latency_sustained"]["rate"], "{:,.0f}/s"))
    pick.append(
        (
            "broker floor p99 at 1,000/s",
            lambda f: (
                f["floor"]["latency"].get(f"{LATENCY_RATE:.0f}", {}).get("p99_ms", float("nan"))
            ),
            "{:,.1f} ms",
        )
    )
    heads = [f"{ENGINE_NAMES.get(f['engine'], f['engine'])} {f['version']}" for f in runs]
    width = max(len(p[0]) for p in pick)
    lines = [f"{'figure':<{width}} | " + " | ".join(f"{h:>20}" for h in heads)]
    for label, get, fmt in pick:
        lines.append(f"{label:<{width}} | " + " | ".join(f"{fmt.format(get(f)):>20}" for f in runs))
    return "\n".join(lines)


def engines() -> list[str]:
    """The engines to measure: Apache Kafka where it can run here, and Tansu."""
    return ([] if missing_tools() else [Engine.KAFKA.value]) + [Engine.TANSU.value]


def main() -> dict[str, Any]:
    """Run on each engine, print the table and the side-by-side view, write
    reports/bench_pipeline.json."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="spma-bench-") as tmp:
        for engine in engines():
            runs.append(run(Path(tmp) / engine, engine))
    stages = fill_stages(wave=WAVE)
    fastest = max(runs, key=lambda f: f["throughput"]["rate"])
    rows = [row for f in runs for row in rows_of(f)]
    rows += stage_rows(stages, 1e6 / fastest["throughput"]["rate"])
    publish(
        "pipeline",
        "pipeline (Apache Kafka and Tansu; workers on 8 partitions, Avro in and out)",
        rows,
        {"figures": {"runs": runs, "stages": stages}},
    )
    print("\nside by side\n" + side_by_side(runs))
    return {"runs": runs, "stages": stages}


if __name__ == "__main__":
    main()
