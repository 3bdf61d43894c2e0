"""Run `spma worker` as a real process against the test broker, and talk to it through topics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.broker import free_port
from infra.settings import Settings
from streams.codec import AvroCodec, codec_from_settings
from streams.kafka_io import Received, drain, flush, make_producer, produce
from streams.records import Record
from streams.topics.admin import create_topics

ROOT = Path(__file__).resolve().parents[2]


class Harness:
    """A prefix of topics on the shared broker, a producer, and the workers started on it."""

    def __init__(
        self, bootstrap: str, prefix: str, partitions: int = 8, **overrides: object
    ) -> None:
        self.settings = Settings(
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            partitions=partitions,
            **overrides,  # type: ignore[arg-type]
        )
        create_topics(self.settings, timeout_s=30)
        self.codec: AvroCodec = codec_from_settings(self.settings)
        self.producer = make_producer(self.settings)
        self.app_id = f"spma-test-{uuid.uuid4().hex[:8]}"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.web_ports: list[int] = []  # each worker's web server (metrics, account view)

    def start_worker(
        self, log_dir: Path, env: dict[str, str] | None = None, loglevel: str = "warning"
    ) -> subprocess.Popen[bytes]:
        """Start one worker process in the consumer group (``env``: more SPMA_* settings)."""
        self.web_ports.append(free_port())
        env = {
            **os.environ,
            "SPMA_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
            "SPMA_TOPIC_PREFIX": self.settings.topic_prefix,
            "SPMA_PARTITIONS": str(self.settings.partitions),
            "SPMA_APP_ID": self.app_id,
            "SPMA_WEB_PORT": str(self.web_ports[-1]),
            "SPMA_DATA_DIR": str(log_dir / f"data-{len(self.workers)}"),
            "SPMA_PRODUCER_IDEMPOTENCE": str(self.settings.producer_idempotence).lower(),
            "SPMA_REPLICATION_FACTOR": str(self.settings.replication_factor),
            **self._optional_env(),
            **(env or {}),
        }
        log = log_dir / f"worker-{len(self.workers)}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli.main",
                "worker",
                "--loglevel",
                loglevel,
                "--no-create",
            ],
            env=env,
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        self.logs.append(log)
        return proc

    def _optional_env(self) -> dict[str, str]:
        """Settings the workers inherit only when the harness sets them."""
        env = {}
        if self.settings.min_insync_replicas is not None:
            env["SPMA_MIN_INSYNC_REPLICAS"] = str(self.settings.min_insync_replicas)
        if self.settings.changelog_config:
            env["SPMA_CHANGELOG_CONFIG"] = json.dumps(self.settings.changelog_config)
        return env

    def send(self, items: list[tuple[str, str, Record]]) -> None:
        """Produce (topic, key, record) inputs and wait for the acks."""
        for topic, key, record in items:
            produce(self.producer, self.codec, self.settings, topic, key, record)
        flush(self.producer)

    def read(
        self, topics: tuple[str, ...], quiet_s: float = 6.0, timeout_s: float = 90.0
    ) -> list[Received]:
        """Everything on some output topics so far, read until quiet."""
        return drain(self.settings, topics, timeout_s=timeout_s, quiet_s=quiet_s)

    def wait_quiet(
        self, topics: tuple[str, ...], settle_s: float = 6.0, timeout_s: float = 120.0
    ) -> list[Received]:
        """Read repeatedly until two reads agree (the workers have caught up)."""
        deadline = time.monotonic() + timeout_s
        last = -1
        got: list[Received] = []
        while time.monotonic() < deadline:
            got = self.read(topics, quiet_s=settle_s, timeout_s=timeout_s)
            if len(got) == last:
                return got
            last = len(got)
        return got

    def collect(self, topics: tuple[str, ...]) -> Collector:
        """A consumer that keeps everything published on some topics (one group join)."""
        return Collector(self, topics)

    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL)."""
        for proc in self.workers:
            proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def log_tail(self) -> str:
        """The end of every worker's log (for failure messages)."""
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs if p.exists())


class Collector:
    """Accumulates the records of some topics; waits, bounded, for a condition on them."""

    def __init__(self, harness: Harness, topics: tuple[str, ...]) -> None:
        from confluent_kafka import Consumer

        self.harness = harness
        self.records: dict[str, list[Received]] = {t: [] for t in topics}
        self.consumer = Consumer(
            {
                **harness.settings.kafka_client_config(),
                "group.id": f"collector-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "log_level": 3,
            }
        )
        self.consumer.subscribe([harness.settings.topic(t) for t in topics])

    def poll(self, seconds: float) -> None:
        """Read whatever arrives for a while."""
        end = time.monotonic() + seconds
        prefix = self.harness.settings.topic_prefix
        while time.monotonic() < end:
            for m in self.consumer.consume(500, timeout=0.2):
                if m.error() is None:
                    self.records[m.topic().removeprefix(prefix)].append(
                        Received(m.topic(), m.partition(), m.offset(), m.key(), m.value())
                    )

    def decoded(self, topic: str) -> list[Record]:
        """Decoded records of a topic, in partition then offset order."""
        ordered = sorted(self.records[topic], key=lambda m: (m.partition, m.offset))
        return [self.harness.codec.decode(topic, m.value) for m in ordered]

    def wait(
        self,
        condition: Callable[[Collector], bool],
        timeout_s: float = 60.0,
        what: str = "condition",
    ) -> None:
        """Poll until the condition holds; AssertionError with the workers' logs if not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll(0.5)
            if condition(self):
                return
        counts: dict[str, object] = {t: len(v) for t, v in self.records.items()}
        if self.records.get("dlq"):
            counts["dlq_details"] = [d.detail for d in self.decoded("dlq")]  # type: ignore[attr-defined]
        if self.records.get("margin-status"):
            counts["states"] = [
                (s.reason, s.state.value, s.stale_underlyings)  # type: ignore[attr-defined]
                for s in self.decoded("margin-status")
            ]
        raise AssertionError(
            f"timed out waiting for {what} (have {counts})\n{self.harness.log_tail()}"
        )

    def settle(self, quiet_s: float = 5.0, timeout_s: float = 120.0) -> None:
        """Poll until nothing new arrives for quiet_s (bounded by timeout_s)."""
        deadline = time.monotonic() + timeout_s
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            self.poll(0.5)
            total = sum(len(v) for v in self.records.values())
            if total != seen:
                seen, since = total, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
        raise AssertionError(f"outputs never settled\n{self.harness.log_tail()}")

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()


@contextmanager
def running(
    bootstrap: str,
    log_dir: Path,
    workers: int = 1,
    partitions: int = 8,
    env: dict[str, str] | None = None,
) -> Iterator[Harness]:
    """A harness with workers started (``env``: more SPMA_* settings), stopped at the end."""
    harness = Harness(bootstrap, f"t{uuid.uuid4().hex[:8]}.", partitions)
    try:
        for _ in range(workers):
            harness.start_worker(log_dir, env)
        yield harness
    finally:
        harness.stop()


def operator_tools(harness: Harness, monkeypatch: Any) -> Any:
    """`spma prove` and `spma verify` as a typer app, set (through the environment) to read
    the harness's topics and its workers' changelog, for CliRunner."""
    import typer

    from streams.cli.commands import prove, verify

    for name, value in {
        "SPMA_BOOTSTRAP_SERVERS": harness.settings.bootstrap_servers,
        "SPMA_TOPIC_PREFIX": harness.settings.topic_prefix,
        "SPMA_PARTITIONS": str(harness.settings.partitions),
        "SPMA_APP_ID": harness.app_id,
    }.items():
        monkeypatch.setenv(name, value)
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    prove.register(app)
    verify.register(app)
    return app
