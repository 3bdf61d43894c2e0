"""The fault tests' harness: worker processes killed with SIGKILL at a chosen moment, restarted,
and the final portfolio table compared with an offline replay of the very same inputs.

It builds on tests/streams/worker_harness.Harness (topics under a fresh prefix, the codec, worker
processes in one consumer group). Inputs are produced as raw bytes in one batch with delivery
reports, so the partition and offset of every input are known: the offline replay applies exactly
what the workers consumed, partition by partition and in offset order, through
streams.accounts.processor.AccountProcessor, and each bad input carries the dlq reason it must get.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams import records as r
from streams.accounts.outputs import InputRef, Output
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.errors import InputRejected
from streams.kafka_io import Received, flush
from streams.market.state import MarketState
from tests.streams.worker_harness import Collector, Harness

TablePartition = tuple[str, int]


@dataclass(frozen=True)
class Input:
    """One input to produce: logical topic, key and raw value; ``record`` is the model of a valid
    input (None for bytes that must not decode) and ``reason`` the dlq reason a bad one gets."""

    topic: str
    key: str | None
    value: bytes
    record: r.Record | None = None
    reason: r.DlqReason | None = None


@dataclass(frozen=True)
class Sent:
    """An input as the broker stored it: where it landed."""

    input: Input
    partition: int
    offset: int

    @property
    def good(self) -> bool:
        """True for an input the workers must apply."""
        return self.input.reason is None


@dataclass
class Replay:
    """What the offline replay of some inputs gives: every account's record and last status."""

    records: dict[str, PortfolioRecord] = field(default_factory=dict)
    statuses: dict[str, r.MarginStatus] = field(default_factory=dict)


class Chaos:
    """Workers of one consumer group on a fresh topic prefix, to start, kill and restart."""

    def __init__(
        self, bootstrap: str, log_dir: Path, partitions: int = 8, **overrides: object
    ) -> None:
        self.harness = Harness(bootstrap, f"t{uuid.uuid4().hex[:10]}.", partitions, **overrides)
        self.log_dir = log_dir
        self.settings = self.harness.settings
        self.codec = self.harness.codec
        self.collectors: list[Collector] = []

    # ----- inputs ----------------------------------------------------------------------------

    def encode(self, topic: str, key: str, record: r.Record) -> Input:
        """A valid input, encoded with the current codec."""
        return Input(topic, key, self.codec.encode(topic, record), record)

    def produce(self, items: Iterable[Input], timeout_s: float = 60.0) -> list[Sent]:
        """Produce inputs in one batch (flushed once); where each landed, in input order."""
        producer = self.harness.producer
        landed: dict[int, tuple[int, int]] = {}
        errors: list[str] = []

        def report(index: int) -> Callable[[object, object], None]:
            def done(err: object, msg: object) -> None:
                if err is not None:
                    errors.append(str(err))
                else:
                    landed[index] = (msg.partition(), msg.offset())  # type: ignore[attr-defined]

            return done

        listed = list(items)
        for i, item in enumerate(listed):
            while True:
                try:
                    producer.produce(
                        self.settings.topic(item.topic),
                        value=item.value,
                        key=item.key.encode() if item.key is not None else None,
                        on_delivery=report(i),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
        flush(producer, timeout_s)
        assert not errors, errors[:5]
        assert len(landed) == len(listed), (len(landed), len(listed))
        return [Sent(item, *landed[i]) for i, item in enumerate(listed)]

    # ----- workers ---------------------------------------------------------------------------

    def start(
        self, env: dict[str, str] | None = None, loglevel: str | None = None
    ) -> subprocess.Popen[bytes]:
        """Start one more worker process in the group (its log level: ``loglevel``, else
        SPMA_FAULTS_LOGLEVEL, else warning)."""
        level = loglevel or os.environ.get("SPMA_FAULTS_LOGLEVEL", "warning")
        return self.harness.start_worker(self.log_dir, env, level)

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        """A worker's log so far."""
        return self.harness.logs[self.harness.workers.index(proc)].read_text(errors="replace")

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker: no shutdown, no last commit, no flush of anything it buffered."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def kill_when(
        self,
        proc: subprocess.Popen[bytes],
        collector: Collector,
        condition: Callable[[Collector], bool],
        timeout_s: float,
        what: str,
    ) -> None:
        """SIGKILL a worker as soon as the collected outputs satisfy a condition (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            collector.poll(0.2)
            if condition(collector):
                assert proc.poll() is None, f"the worker died on its own\n{self.log_tail()}"
                self.kill(proc)
                return
        raise AssertionError(f"timed out waiting for {what} to kill the worker\n{self.log_tail()}")

    def wait_count(self, collector: Collector, topic: str, n: int, timeout_s: float) -> None:
        """Poll until a collector holds at least n records of a topic (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            collector.poll(0.3)
            if len(collector.records[topic]) >= n:
                return
        have = len(collector.records[topic])
        raise AssertionError(f"{have} of {n} {topic} records in {timeout_s:g} s\n{self.log_tail()}")

    def committed(self, partitions: Iterable[TablePartition]) -> dict[TablePartition, int]:
        """The group's committed offset (next to read; -1 when none) of topic partitions."""
        consumer = Consumer(
            {
                **self.settings.kafka_client_config(),
                "group.id": self.harness.app_id,
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        try:
            tps = [TopicPartition(self.settings.topic(t), p) for t, p in partitions]
            found = consumer.committed(tps, timeout=10)
        finally:
            consumer.close()
        prefix = self.settings.topic_prefix
        return {(tp.topic.removeprefix(prefix), tp.partition): tp.offset for tp in found}

    def wait_statuses(self, collector: Collector, inputs: list[Sent], timeout_s: float) -> None:
        """Wait until every input has a margin-status naming it (topic, partition, offset): the
        workers applied it and published its outputs. Each status is decoded once."""
        want = {(self.settings.topic(s.input.topic), s.partition, s.offset) for s in inputs}
        seen: set[tuple[str, int, int]] = set()
        done = 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            collector.poll(0.5)
            got = collector.records["margin-status"]
            for m in got[done:]:
                st = self.codec.decode("margin-status", m.value)
                assert isinstance(st, r.MarginStatus)
                seen.add((st.input_topic, st.input_partition, st.input_offset))
            done = len(got)
            if want <= seen:
                return
        missing: dict[int, list[int]] = {}
        for _, p, o in sorted(want - seen):
            missing.setdefault(p, []).append(o)
        summary = {p: (len(os), os[0], os[-1]) for p, os in missing.items()}
        committed = self.committed({(s.input.topic, s.partition) for s in inputs})
        table = self.table()
        lost = [
            s
            for s in inputs
            if (self.settings.topic(s.input.topic), s.partition, s.offset) not in seen
        ][:5]
        records = {
            s.input.key: (
                s.partition,
                s.offset,
                table[s.input.key].offsets if s.input.key in table else None,
                [e[:3] for e in table[s.input.key].outbox] if s.input.key in table else None,
                s.input.key in table
                and getattr(s.input.record, "fill_id", None) in table[s.input.key].recent_ids,
            )
            for s in lost
        }
        raise AssertionError(
            f"inputs without a status after {timeout_s:g} s, by partition (count, first, last): "
            f"{summary}; committed offsets: {committed}; their records: {records}; dlq: "
            f"{len(collector.records.get('dlq', []))}\n{self.log_tail()}"
        )

    def alive(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes still running."""
        return [p for p in self.harness.workers if p.poll() is None]

    def log_tail(self) -> str:
        """The end of every worker's log."""
        return self.harness.log_tail()

    def collect(self, topics: tuple[str, ...]) -> Collector:
        """A collector of some output topics, closed with the workers."""
        collector = self.harness.collect(topics)
        self.collectors.append(collector)
        return collector

    def stop(self) -> None:
        """Stop every worker still running; close the collectors."""
        self.harness.stop()
        for collector in self.collectors:
            collector.close()

    # ----- state -----------------------------------------------------------------------------

    def changelog(
        self,
        app_id: str | None = None,
        quiet_s: float = 2.0,
        layout: tuple[int, int] | None = None,
    ) -> list[Received]:
        """Every record of an app's portfolios changelog (named by the settings after the
        prefix, the app and the ``layout``'s generation, of its partition count; generation 0
        of the settings' partitions when not given), read by assignment (no group join) until
        nothing new arrives for quiet_s."""
        app = app_id or self.harness.app_id
        generation, count = layout or (0, self.settings.partitions)
        named = self.settings.model_copy(update={"app_id": app})
        topic = named.for_generation(generation, count).portfolios_changelog()
        consumer = Consumer(
            {
                **self.settings.kafka_client_config(),
                "group.id": f"chaos-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        parts = range(count)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        # Every partition up to the end the broker reports, then quiet (a busy machine can
        # stall one partition's fetch longer than the quiet period; Tansu may under-report
        # the end, which the quiet period covers).
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10.0)[1] for p in parts}
        found: list[Received] = []
        deadline = time.monotonic() + 120.0
        last = time.monotonic()
        try:
            while time.monotonic() - last < quiet_s or any(e > 0 for e in ends.values()):
                assert time.monotonic() < deadline, f"{topic} never went quiet"
                fresh = [m for m in consumer.consume(1000, timeout=0.3) if m.error() is None]
                if fresh:
                    last = time.monotonic()
                    for m in fresh:
                        if m.offset() + 1 >= ends[m.partition()]:
                            ends[m.partition()] = 0
                    found += [
                        Received(m.topic(), m.partition(), m.offset(), m.key(), m.value())
                        for m in fresh
                    ]
        finally:
            consumer.close()
        return found

    def table(
        self, app_id: str | None = None, layout: tuple[int, int] | None = None
    ) -> dict[str, PortfolioRecord]:
        """The portfolio table as the changelog leaves it: each account's latest record (of a
        generation's ``layout``, (generation, partitions), when given)."""
        latest: dict[str, PortfolioRecord] = {}
        found = self.changelog(app_id, layout=layout)
        for m in sorted(found, key=lambda m: (m.partition, m.offset)):
            if m.key is None or m.value is None:
                continue
            key = orjson.loads(m.key)
            if isinstance(key, str) and not key.startswith("\x00"):
                latest[key] = PortfolioRecord.from_json(m.value)
        return latest

    def wait_table(
        self,
        condition: Callable[[dict[str, PortfolioRecord]], bool],
        timeout_s: float,
        what: str,
        app_id: str | None = None,
        layout: tuple[int, int] | None = None,
    ) -> dict[str, PortfolioRecord]:
        """Read an app's table (of a generation's ``layout``) until a condition on it holds
        (bounded); the table."""
        deadline = time.monotonic() + timeout_s
        while True:
            table = self.table(app_id, layout)
            if condition(table):
                return table
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log_tail()}")
            time.sleep(1.0)


def replay(
    chaos: Chaos,
    broadcasts: list[Received],
    sent: list[Sent],
    held: Iterable[r.DlqReason] = (),
) -> Replay:
    """Apply the good inputs offline, as each partition saw them: its market broadcasts, then
    collateral, then fills, each in offset order, through AccountProcessor. Bad inputs whose
    reason is in ``held`` go through it too (a partition holds them before it refuses them, and
    their offsets count as handled); one it refuses at once is skipped."""
    out = Replay()
    order = {"collateral": 0, "fills": 1}
    held = set(held)
    for partition in range(chaos.settings.partitions):
        proc = AccountProcessor(partition, MarketState())
        for m in sorted((b for b in broadcasts if b.partition == partition), key=_offset):
            update = chaos.codec.decode("market-broadcast", m.value)
            assert isinstance(update, r.MarketUpdate)
            proc.on_market(update, InputRef(m.topic, partition, m.offset))
        mine = [
            s
            for s in sent
            if s.partition == partition
            and s.input.topic in order
            and (s.good or (s.input.reason in held and s.input.record is not None))
        ]
        for s in sorted(mine, key=lambda s: (order[s.input.topic], s.offset)):
            ref = InputRef(chaos.settings.topic(s.input.topic), partition, s.offset)
            try:
                outputs = _apply(proc, s.input.record, ref)
            except InputRejected:
                assert not s.good, s
                continue
            for o in outputs:
                if isinstance(o.record, r.MarginStatus):
                    out.statuses[o.key] = o.record
        out.records.update(proc.records)
    return out


def _apply(proc: AccountProcessor, value: r.Record | None, ref: InputRef) -> list[Output]:
    """A fill or a transfer through the processor: its outputs."""
    if isinstance(value, r.Fill):
        return proc.on_fill(value, ref)
    assert isinstance(value, r.CollateralTransfer)
    return proc.on_transfer(value, ref)


def _offset(m: Received) -> int:
    return m.offset


def assert_same_portfolios(online: dict[str, PortfolioRecord], offline: Replay) -> None:
    """Positions, collateral, applied offsets and the window of applied ids, exactly equal."""
    expected = {a: rec for a, rec in offline.records.items() if rec.offsets}
    assert sorted(online) == sorted(expected), (
        f"accounts only online: {sorted(set(online) - set(expected))[:10]}, "
        f"only offline: {sorted(set(expected) - set(online))[:10]}"
    )
    for account, want in expected.items():
        got = online[account]
        assert _book(got) == _book(want), (account, _book(got), _book(want))


def _book(record: PortfolioRecord) -> dict[str, object]:
    """What an account's record must agree on, whatever the path: money, positions, inputs."""
    return {
        "positions": {n: (p.qty, p.entry, p.realised) for n, p in record.positions.items()},
        "collateral": record.collateral,
        "offsets": record.offsets,
        "recent_ids": record.recent_ids,
        "partition": record.partition,
    }


def status_inputs(statuses: Iterable[r.MarginStatus]) -> dict[tuple[str, int, int], set[str]]:
    """Status ids by the input that caused them (topic, partition, offset)."""
    found: dict[tuple[str, int, int], set[str]] = {}
    for s in statuses:
        found.setdefault((s.input_topic, s.input_partition, s.input_offset), set()).add(s.status_id)
    return found


@contextmanager
def chaos(
    bootstrap: str, log_dir: Path, partitions: int = 8, **overrides: object
) -> Iterator[Chaos]:
    """A Chaos on a fresh prefix (``overrides``: more settings for it and its workers); every
    worker still running is stopped at the end."""
    c = Chaos(bootstrap, log_dir, partitions, **overrides)
    try:
        yield c
    finally:
        c.stop()
