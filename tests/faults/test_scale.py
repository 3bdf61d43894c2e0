"""Scaling a running deployment on Apache Kafka: 1,000 accounts on 4 partitions with 2 workers,
`spma scale --partitions 8` while fills, transfers and prices keep arriving, 2 more workers
started; at the end every account's record equals the offline replay of its inputs, every fill
has exactly one status input, no output id carries two contents, and no liquidation, ADL order
or insurance claim appears (the replay, whose accounts are all far from their margin, has none).
The same with the command killed (SIGKILL) once it recorded its drain, then run again.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.market.state import MarketState
from tests.faults import scenario
from tests.faults.chaos import Chaos, Input, Sent, chaos
from tests.streams.worker_harness import ROOT, Collector

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ACCOUNTS = scenario.accounts(1000)
BATCHES = 60  # one every 0.5 s: 30 s of trading around the scale
FILLS_PER_BATCH = 80
TRANSFERS_PER_BATCH = 4
WATCHED = ("margin-status", "margin-calls", "liquidations", "adl", "insurance-claims", "dlq")


class Trading(threading.Thread):
    """The exchange: a batch of fills, transfers and oracle quotes every 0.5 s."""

    def __init__(self, c: Chaos, t0: datetime) -> None:
        super().__init__(daemon=True)
        self.c = c
        self.t0 = t0
        self.sent: list[Sent] = []
        self.error: BaseException | None = None

    def batch(self, b: int) -> list[Input]:
        """The b-th batch (seeded: the same inputs on every run)."""
        import random

        rng = random.Random(b)
        ts = self.t0 + timedelta(seconds=1 + b)
        items = []
        for i in range(FILLS_PER_BATCH):
            n = 100_000 + b * FILLS_PER_BATCH + i
            account = rng.choice(ACCOUNTS)
            fill = scenario.fill_record(n, account, rng, ts + timedelta(milliseconds=i))
            items.append(self.c.encode("fills", account, fill))
        for i in range(TRANSFERS_PER_BATCH):
            account = rng.choice(ACCOUNTS)
            transfer = r.CollateralTransfer(
                transfer_id=f"top-{b}-{i}",
                account=account,
                asset="USDC",
                amount=1_000.0,
                kind="DEPOSIT",
                ts=ts,
            )
            items.append(self.c.encode("collateral", account, transfer))
        return items + scenario.quotes(self.c, ts, scenario.BTC + rng.randint(-400, 400))

    def run(self) -> None:
        try:
            for b in range(BATCHES):
                started = time.monotonic()
                self.sent += self.c.produce(self.batch(b))
                time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
        except BaseException as exc:  # reported by the test
            self.error = exc


class Watcher(threading.Thread):
    """Reads the outputs as they come, noting when new margin statuses arrived (a status sent
    again from an outbox, an id already seen, is no news)."""

    def __init__(self, c: Chaos) -> None:
        super().__init__(daemon=True)
        self.c = c
        self.out = Collector(c.harness, WATCHED)
        self.arrivals: list[float] = []  # monotonic times new statuses arrived at
        self.stopping = threading.Event()

    def run(self) -> None:
        done, ids = 0, set()
        while not self.stopping.is_set():
            self.out.poll(0.1)
            got = self.out.records["margin-status"]
            fresh = {self.c.codec.decode("margin-status", m.value).status_id for m in got[done:]}  # type: ignore[attr-defined]
            done = len(got)
            if fresh - ids:
                self.arrivals.append(time.monotonic())
                ids |= fresh

    def stop(self) -> Collector:
        self.stopping.set()
        self.join(30)
        return self.out

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without a new status between start and end (monotonic)."""
        times = [start, *(t for t in self.arrivals if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(times))


def spma_env(c: Chaos) -> dict[str, str]:
    """The environment of an `spma` command on the test's deployment."""
    return {
        **os.environ,
        "SPMA_BOOTSTRAP_SERVERS": c.settings.bootstrap_servers,
        "SPMA_TOPIC_PREFIX": c.settings.topic_prefix,
        "SPMA_PARTITIONS": str(c.settings.partitions),
        "SPMA_APP_ID": c.harness.app_id,
        "SPMA_PRODUCER_IDEMPOTENCE": str(c.settings.producer_idempotence).lower(),
        "SPMA_REPLICATION_FACTOR": str(c.settings.replication_factor),
    }


def scale_command(c: Chaos, *args: str) -> subprocess.Popen[str]:
    """`spma scale` on the test's deployment."""
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli.main", "scale", *args],
        env=spma_env(c),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_describe(c: Chaos) -> str:
    """`spma topics describe`'s output."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "topics", "describe"],
        env=spma_env(c),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout


def run_scale(c: Chaos, *args: str, timeout_s: float = 150.0) -> str:
    """Run `spma scale` to its end; its output (AssertionError if it failed)."""
    proc = scale_command(c, *args)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"spma scale {args} timed out:\n{output}\n{c.log_tail()}") from None
    assert proc.returncode == 0, f"spma scale {args}: {output}\n{c.log_tail()}"
    return output


def kill_scale_once_draining(c: Chaos, *args: str, timeout_s: float = 60.0) -> str:
    """Start `spma scale`, SIGKILL it once it recorded its drain; its output until then."""
    proc = scale_command(c, *args)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + timeout_s
    for line in proc.stdout:
        lines.append(line)
        if "recorded: draining" in line:
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "".join(lines)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    return "".join(lines)


def replay(
    c: Chaos, broadcasts: list[r.MarketUpdate], sent: list[Sent]
) -> dict[str, PortfolioRecord]:
    """Every account's record from its inputs alone: the market's reference data first, then
    the transfers, then the fills, each in the order of its input partition."""
    proc = AccountProcessor(0, MarketState())
    for i, update in enumerate(broadcasts):
        proc.on_market(update, InputRef(c.settings.topic("market-broadcast"), 0, i))
    order = {"collateral": 0, "fills": 1}
    inputs = [s for s in sent if s.input.topic in order]
    for s in sorted(inputs, key=lambda s: (order[s.input.topic], s.partition, s.offset)):
        ref = InputRef(c.settings.topic(s.input.topic), s.partition, s.offset)
        if isinstance(s.input.record, r.Fill):
            proc.on_fill(s.input.record, ref)
        else:
            assert isinstance(s.input.record, r.CollateralTransfer)
            proc.on_transfer(s.input.record, ref)
    return proc.records


def assert_same_accounts(
    c: Chaos, online: dict[str, PortfolioRecord], offline: dict[str, PortfolioRecord]
) -> None:
    """Positions exactly, collateral to the float's rounding, the inputs applied once each
    (the window of ids as a multiset, the input offsets), each account on its new partition."""
    assert sorted(online) == sorted(offline)
    upstream = {c.settings.topic("fills"), c.settings.topic("collateral")}
    differ = {
        a: (
            sorted(set(want.recent_ids) - set(online[a].recent_ids)),
            sorted(set(online[a].recent_ids) - set(want.recent_ids)),
            len(online[a].recent_ids) - len(want.recent_ids),
            online[a].offsets,
            want.offsets,
        )
        for a, want in offline.items()
        if sorted(online[a].recent_ids) != sorted(want.recent_ids)
    }
    assert not differ, (len(differ), list(differ.items())[:5])
    for account, want in offline.items():
        got = online[account]
        positions = {n: (p.qty, p.entry, p.realised) for n, p in got.positions.items()}
        assert positions == {n: (p.qty, p.entry, p.realised) for n, p in want.positions.items()}
        assert got.collateral == pytest.approx(want.collateral, rel=1e-12), account
        assert sorted(got.recent_ids) == sorted(want.recent_ids), account
        assert {t: o for t, o in got.offsets.items() if t in upstream} == want.offsets, account
        assert got.partition == zlib.crc32(account.encode()) % 8


def assert_outputs(c: Chaos, out: Collector, fills: int) -> None:
    """Every fill's status once (by the input that caused it), one content per id, no order."""
    assert not out.records["dlq"], out.decoded("dlq")[:3]
    for topic in ("liquidations", "adl"):
        assert not out.records[topic], (topic, out.decoded(topic)[:3])
    claims = [x for x in out.decoded("insurance-claims") if isinstance(x, r.InsuranceClaim)]
    assert not claims, claims[:3]  # (ADL candidates and fees share the topic)
    contents: dict[str, set[bytes]] = {}
    fill_inputs = set()
    for m in out.records["margin-status"]:
        status = c.codec.decode("margin-status", m.value)
        assert isinstance(status, r.MarginStatus)
        contents.setdefault(status.status_id, set()).add(m.value or b"")
        if c.settings.logical_topic(status.input_topic) == "fills":
            fill_inputs.add((status.input_topic, status.input_partition, status.input_offset))
    doubled = {k: len(v) for k, v in contents.items() if len(v) > 1}
    assert not doubled, list(doubled.items())[:5]
    assert len(fill_inputs) == fills


def wait_applied(c: Chaos, sent: list[Sent], timeout_s: float) -> dict[str, PortfolioRecord]:
    """Generation 1's table once every account applied its last input (bounded)."""
    last: dict[tuple[str, str], int] = {}
    for s in sent:
        if s.input.topic in ("fills", "collateral") and s.input.key is not None:
            key = (s.input.key, c.settings.topic(s.input.topic))
            last[key] = max(last.get(key, -1), s.offset)

    def done(table: dict[str, PortfolioRecord]) -> bool:
        return all(
            account in table and table[account].offsets.get(topic, -1) >= offset
            for (account, topic), offset in last.items()
        )

    return c.wait_table(done, timeout_s, "every input in generation 1's table", layout=(1, 8))


def scale_while_trading(c: Chaos, kill: bool) -> None:
    """The acceptance scenario; the command killed once in the middle when ``kill``."""
    out = c.collect(("margin-status", "market-broadcast", "dlq"))
    for _ in range(2):
        c.start()
    t0 = scenario.start_time()
    opened = scenario.open_accounts(c, out, ACCOUNTS, t0)
    plan = run_scale(c, "--partitions", "8", "--dry-run")
    assert "generation 0 (4 account partitions) -> generation 1 (8)" in plan, plan
    assert f"{c.settings.topic_prefix}g1.fills: 8 partitions" in plan, plan
    watcher = Watcher(c)
    c.collectors.append(watcher.out)  # closed with the workers
    watcher.start()
    trading = Trading(c, t0)
    trading.start()
    time.sleep(5.0)
    started = time.monotonic()
    if kill:
        kill_scale_once_draining(c, "--partitions", "8")
    output = run_scale(c, "--partitions", "8")
    switched = time.monotonic()
    assert "generation 1 active, 8 account partitions" in output, output
    if kill:
        assert "resuming after step draining" in output, output
    for _ in range(2):
        c.start()
    trading.join(120)
    assert trading.error is None, trading.error
    sent = opened + trading.sent
    table = wait_applied(c, sent, timeout_s=120)
    time.sleep(3.0)  # the last statuses on their way
    found = watcher.stop()
    gap = watcher.longest_gap(started, switched + 10.0)
    print(f"scale took {switched - started:.1f} s, statuses paused at most {gap:.1f} s")
    broadcasts = [
        c.codec.decode("market-broadcast", m.value)
        for m in sorted(out.records["market-broadcast"], key=lambda m: m.offset)
        if m.partition == 0
    ][:3]  # the instrument and the first marks
    assert_same_accounts(c, table, replay(c, broadcasts, sent))  # type: ignore[arg-type]
    assert_outputs(c, found, sum(1 for s in sent if s.input.topic == "fills"))
    assert len(c.alive()) == 4, c.log_tail()
    described = run_describe(c)
    assert "generation 1 in use, 8 account partitions (generation 0: 4, generation 1: 8)" in (
        described
    )


def test_scale_from_4_to_8_partitions_while_trading(kafka_bootstrap: str, tmp_path: Path) -> None:
    with chaos(kafka_bootstrap, tmp_path, partitions=4) as c:
        scale_while_trading(c, kill=False)


def test_scale_killed_once_then_run_again(kafka_bootstrap: str, tmp_path: Path) -> None:
    with chaos(kafka_bootstrap, tmp_path, partitions=4) as c:
        scale_while_trading(c, kill=True)
