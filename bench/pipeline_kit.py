"""What the pipeline and memory benchmarks share: a broker of either engine (Apache Kafka or the
embedded Tansu) with the topics, real worker processes, a seeded market, pre-encoded inputs, a
status listener and a paced producer.

Inputs are encoded before any timing starts (the matching engine's encoding is not the worker's
cost). The listener is a confluent-kafka consumer assigned to every partition of an output topic
(no group join), in its own process, noting each record's key and arrival time; matching
statuses to fills is done afterwards, per account in order (a fill gives exactly one status of
its account, and an account's statuses keep its inputs' order).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import urllib.request
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from infra.broker import free_port
from infra.broker_engine import Engine, RunningBroker, start_broker
from infra.settings import Settings
from streams import records as r
from streams.codec import AvroCodec, codec_from_settings
from streams.tools.demo.worker import start_worker, stop_worker
from streams.tools.exchange import SPOTS, Exchange
from streams.topics.admin import create_topics

PARTITIONS = 8
PERPETUALS = tuple(f"{u}-PERPETUAL" for u in SPOTS)


def _listen(
    config: dict[str, Any],
    assignments: list[tuple[str, int]],
    keep_values: bool,
    out: Any,
    stop: Any,
) -> None:
    """The listener process: consume, and pass on each record's key and arrival time."""
    consumer = Consumer(config)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in assignments])
    consumer.consume(1, timeout=0.5)
    out.put([])  # fetching: ready
    while not stop.is_set():
        batch = [
            (m.key() or b"", time.perf_counter(), (m.value() or b"") if keep_values else b"")
            for m in consumer.consume(1000, timeout=0.05)
            if m.error() is None
        ]
        if batch:
            out.put(batch)
    consumer.close()
    out.put(None)


@dataclass
class Listener:
    """Keys and arrival times of everything published on some topics.

    The consumer runs in its own process (a thread would wait for the producer's hold on the
    GIL: that inflated the broker floor's latency from ~30 ms to ~70 ms at p50); a thread here
    only files what it reports. perf_counter is CLOCK_MONOTONIC, one clock for both processes.
    """

    process: Any
    queue: Any
    stop_event: Any
    keep_values: bool = False
    seen: list[tuple[bytes, float]] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    thread: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Listener:
        """Start filing what the process reports, once its consumer fetches."""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(60):
            raise RuntimeError("the listener process did not start")
        return self

    def _run(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            self.ready.set()
            for key, t, value in batch:
                self.seen.append((key, t))
                if self.keep_values:
                    self.values.append(value)

    def count(self, prefix: bytes) -> int:
        """Records so far whose key starts with prefix."""
        return sum(1 for k, _ in list(self.seen) if k.startswith(prefix))

    def wait(self, prefix: bytes, count: int, timeout_s: float) -> bool:
        """Wait until `count` records with that key prefix arrived (False on timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count(prefix) >= count:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop the process and the thread."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()


@dataclass
class Pipeline:
    """The broker, the topics under a fresh prefix, the workers, a producer and the codec."""

    broker: RunningBroker
    settings: Settings
    codec: AvroCodec
    producer: Producer
    log_dir: Path
    worker: Popen[bytes] | None = None
    exchange: Exchange | None = None
    web_port: int = 0
    workers: list[Popen[bytes]] = field(default_factory=list)
    app_id: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")

    @classmethod
    def start(cls, log_dir: Path, engine: Engine | str = Engine.AUTO) -> Pipeline:
        """A fresh broker of the engine up, topics created (nothing else running yet)."""
        broker = start_broker(engine)
        settings = Settings(
            bootstrap_servers=broker.bootstrap,
            topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
            partitions=PARTITIONS,
            producer_idempotence=broker.engine == "kafka",  # Tansu rejects aiokafka's
        )
        create_topics(settings, timeout_s=30)
        producer = Producer(
            {**settings.kafka_client_config(), "linger.ms": 1, "log_level": 3, "acks": 1}
        )
        return cls(broker, settings, codec_from_settings(settings), producer, log_dir)

    def start_worker(self, app_id: str | None = None) -> Popen[bytes]:
        """One more `spma worker` process in the pipeline's group (or app_id's); `worker` and
        `web_port` name the first one's."""
        port = free_port()
        log_dir = self.log_dir / f"worker-{len(self.workers)}"
        proc = start_worker(self.settings, app_id or self.app_id, log_dir, port)
        if self.worker is None:
            self.worker, self.web_port = proc, port
        self.workers.append(proc)
        return proc

    def metric(self, name: str) -> float:
        """The worker's value of an unlabelled Prometheus sample (0 when absent)."""
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def listener(self, topics: Iterable[str], keep_values: bool = False) -> Listener:
        """A listener on every partition of some output topics, from their beginning."""
        config = {
            **self.settings.kafka_client_config(),
            "group.id": f"bench-listen-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
            "log_level": 3,
        }
        where = [(self.settings.topic(t), p) for t in topics for p in range(PARTITIONS)]
        context = multiprocessing.get_context("spawn")
        queue, stop = context.Queue(), context.Event()
        process = context.Process(
            target=_listen, args=(config, where, keep_values, queue, stop), daemon=True
        )
        process.start()
        return Listener(process, queue, stop, keep_values).start()

    def seed_market(self) -> Exchange:
        """Instruments, oracle quotes, depth and surfaces (the demo exchange's) through Kafka."""
        ex = Exchange(datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=1))
        ex.list_instruments()
        ex.publish_market()
        self.send_records(ex.inputs)
        self.exchange = ex
        return ex

    def send_records(self, items: Iterable[tuple[str, str, r.Record]]) -> None:
        """Encode, produce and flush (seeding: not timed)."""
        self.send_raw(
            (self.settings.topic(t), k.encode(), self.codec.encode(t, v)) for t, k, v in items
        )

    def send_raw(self, items: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Produce pre-encoded records and flush."""
        for topic, key, value in items:
            self._produce(topic, key, value)
        self.producer.flush(60)

    def produce_to(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        """Produce one record to a given partition (seeding a changelog)."""
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, partition=partition)
                return
            except BufferError:
                self.producer.poll(0.01)

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key)
                return
            except BufferError:
                self.producer.poll(0.01)

    def deposits(
        self, accounts: list[str], amount: float = 5e6, tag: str = "dep"
    ) -> list[tuple[str, bytes, bytes]]:
        """One USDC deposit per account (transfer id `tag-account`), encoded."""
        ts = datetime.now(tz=UTC) - timedelta(seconds=1)
        return [
            (
                self.settings.topic("collateral"),
                a.encode(),
                self.codec.encode(
                    "collateral",
                    r.CollateralTransfer(
                        transfer_id=f"{tag}-{a}",
                        account=a,
                        asset="USDC",
                        amount=amount,
                        kind="DEPOSIT",
                        ts=ts,
                    ),
                ),
            )
            for a in accounts
        ]

    def fills(
        self, accounts: list[str], count: int, seed: int = 1
    ) -> list[tuple[str, bytes, bytes]]:
        """`count` small taker fills spread over the accounts (perpetuals, futures and options
        of the listed chains), encoded; each account stays well collateralised."""
        assert self.exchange is not None
        rng = np.random.default_rng(seed)
        names = [n for n in self._listed() if not n.endswith("-INV")]
        ts = datetime.now(tz=UTC) - timedelta(seconds=1)
        out = []
        for i in range(count):
            account = accounts[i % len(accounts)]
            name = names[int(rng.integers(0, len(names)))]
            und = name.split("-")[0]
            option = name.endswith(("-C", "-P"))
            price = SPOTS[und] * (0.05 if option else 1.0)
            qty = 10_000.0 / SPOTS[und] * float(rng.uniform(0.1, 1.0))
            fill = r.Fill(
                fill_id=f"f-{account}-{i}",
                account=account,
                instrument=name,
                side="BUY" if rng.random() < 0.5 else "SELL",
                qty=qty,
                price=price,
                fee=0.0,
                liquidity="TAKER",
                ts=ts,
            )
            out.append(
                (self.settings.topic("fills"), account.encode(), self.codec.encode("fills", fill))
            )
        return out

    def _listed(self) -> list[str]:
        """Names of the seeded instruments."""
        assert self.exchange is not None
        return [
            rec.name  # type: ignore[attr-defined]
            for topic, _, rec in self.exchange.inputs
            if topic == "instruments"
        ]

    def rss_bytes(self) -> int:
        """Resident size of the worker process (VmRSS)."""
        assert self.worker is not None
        return rss_of(self.worker.pid)

    def stop(self) -> None:
        """Stop the worker and the broker."""
        self.producer.flush(10)
        for proc in self.workers:
            stop_worker(proc)
        self.broker.stop()
        # A producer outliving its broker retries (and logs) for ever: replace it with one that
        # has nothing to reach, never started (librdkafka connects on first use).
        self.producer = Producer({"bootstrap.servers": "127.0.0.1:9", "log_level": 0})


def rss_of(pid: int) -> int:
    """Resident set size of a process in bytes (psutil when installed, else /proc)."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no resident size for process {pid}")


def paced(
    pipe: Pipeline, records: list[tuple[str, bytes, bytes]], rate: float
) -> list[tuple[bytes, float]]:
    """Produce records at `rate` a second, each at its slot or just after, never early; returns
    each record's key and the perf_counter time it was handed to the producer. Between slots the
    loop sleeps (up to a millisecond) rather than spins, so the producer takes little CPU from
    the worker and the broker it measures."""
    sent: list[tuple[bytes, float]] = []
    start = time.perf_counter()
    i, n = 0, len(records)
    while i < n:
        now = time.perf_counter()
        while i < n and start + i / rate <= now:
            topic, key, value = records[i]
            pipe._produce(topic, key, value)
            sent.append((key, time.perf_counter()))
            i += 1
        pipe.producer.poll(0)
        if i < n:
            time.sleep(min(max(start + i / rate - time.perf_counter(), 0.0), 0.001))
    pipe.producer.flush(60)
    return sent


def latencies(
    sent: list[tuple[bytes, float]], seen: list[tuple[bytes, float]], prefix: bytes
) -> np.ndarray:
    """Seconds from each record's produce to its output, matched per key in order."""
    arrived: dict[bytes, deque[float]] = defaultdict(deque)
    for key, t in seen:
        if key.startswith(prefix):
            arrived[key].append(t)
    out = []
    for key, t in sent:
        queue = arrived.get(key)
        if queue:
            out.append(queue.popleft() - t)
    return np.array(out)


def summary(values: np.ndarray) -> dict[str, Any]:
    """p50, p99, p999 and max (ms) of latencies in seconds."""
    if values.size == 0:
        return {"count": 0}
    p = np.percentile(values * 1e3, [50, 99, 99.9])
    return {
        "count": int(values.size),
        "p50_ms": float(p[0]),
        "p99_ms": float(p[1]),
        "p999_ms": float(p[2]),
        "max_ms": float(values.max() * 1e3),
    }
