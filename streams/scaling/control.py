"""The generations topic: which account layout the deployment runs, and how far a scale got.

One compacted topic of one partition, ``{prefix}{app_id}-generations``, holds one key whose latest
value is the deployment's ``Layouts``: the active generation, each generation's account partition
count, and the scale under way if any (its target and the last step it finished). Workers read it
at start (the generation they run) and watch it (a drain asked of them); ``spma scale`` writes a
new value after each step, so a killed command run again resumes from the last step recorded. No
record at all means generation 0 with the configured partition count: a deployment from before
scaling existed changes nothing until its first scale.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from infra.settings import Settings
from streams.kafka_io import flush, make_consumer
from streams.scaling import broker
from streams.scaling.errors import ScaleError

STATE_KEY = b"layouts"
"""The one key of the generations topic."""


class Step(StrEnum):
    """The last step of a scale that finished (each one is recorded when it is done)."""

    PREPARED = "prepared"  # the next generation's topics exist
    DRAINING = "draining"  # the workers of the active generation are asked to stop
    COPIED = "copied"  # the tables are re-keyed into the next generation's changelog


@dataclass(frozen=True)
class Switch:
    """A scale under way: the generation it builds, its partition count, its last step."""

    to: int
    partitions: int
    step: Step


@dataclass(frozen=True)
class Layouts:
    """The deployment's account layouts: the active generation, each one's partition count."""

    active: int
    partitions: dict[int, int] = field(default_factory=dict)
    switch: Switch | None = None

    @classmethod
    def initial(cls, settings: Settings) -> Layouts:
        """A deployment that never scaled: generation 0, the configured partition count."""
        return cls(0, {0: settings.partitions})

    @property
    def active_partitions(self) -> int:
        """The active generation's account partition count."""
        return self.partitions[self.active]

    @property
    def runnable(self) -> bool:
        """True when workers may run the active generation (no drain asked, nothing copied)."""
        return self.switch is None or self.switch.step is Step.PREPARED

    def summary(self) -> str:
        """The generation in use and any scale under way, in one line."""
        older = ", ".join(f"generation {g}: {n}" for g, n in sorted(self.partitions.items()))
        line = (
            f"generation {self.active} in use, {self.active_partitions} account partitions "
            f"({older})"
        )
        if self.switch is None:
            return line + "; no scale under way"
        s = self.switch
        return line + f"; a scale to generation {s.to} ({s.partitions}) is at step {s.step}"

    def at(self, step: Step) -> Layouts:
        """The layouts with the scale under way at a further step."""
        assert self.switch is not None
        return replace(self, switch=replace(self.switch, step=step))

    def to_json(self) -> bytes:
        """The record's value."""
        switch = None
        if self.switch is not None:
            s = self.switch
            switch = {"to": s.to, "partitions": s.partitions, "step": str(s.step)}
        parts = {str(g): n for g, n in sorted(self.partitions.items())}
        return orjson.dumps({"active": self.active, "partitions": parts, "switch": switch})

    @classmethod
    def from_json(cls, raw: bytes) -> Layouts:
        """Inverse of to_json."""
        data = orjson.loads(raw)
        parts = {int(g): int(n) for g, n in data["partitions"].items()}
        s = data.get("switch")
        switch = None if s is None else Switch(int(s["to"]), int(s["partitions"]), Step(s["step"]))
        return cls(int(data["active"]), parts, switch)


def ensure_topic(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create the generations topic when it is missing (compacted, one partition)."""
    admin = AdminClient(settings.kafka_client_config())
    name = settings.generations_topic()
    if name in admin.list_topics(timeout=timeout_s).topics:
        return
    config = {"cleanup.policy": "compact"}
    if settings.min_insync_replicas is not None:
        config["min.insync.replicas"] = str(settings.min_insync_replicas)
    topic = NewTopic(name, 1, settings.replication_factor, config=config)
    future = admin.create_topics([topic], operation_timeout=timeout_s)[name]
    try:
        future.result(timeout=timeout_s)
    except Exception as exc:  # created meanwhile by another process: fine
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise


def read_layouts(settings: Settings, timeout_s: float = 15.0) -> Layouts:
    """The latest layouts recorded (``Layouts.initial`` when the topic is missing or empty)."""
    name = settings.generations_topic()
    consumer = make_consumer(settings, f"spma-generations-{uuid.uuid4().hex[:8]}")
    try:
        if name not in consumer.list_topics(timeout=timeout_s).topics:
            return Layouts.initial(settings)
        return _read_to_end(consumer, name, settings, timeout_s)
    finally:
        consumer.close()


def _read_to_end(consumer: Consumer, name: str, settings: Settings, timeout_s: float) -> Layouts:
    """The last value of the state key up to the partition's end."""
    tp = TopicPartition(name, 0)
    low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
    latest = Layouts.initial(settings)
    if high <= low:
        return latest
    consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for m in consumer.consume(100, timeout=0.5):
            if m.error() is not None:
                continue
            value = m.value()
            if m.key() == STATE_KEY and value:
                latest = Layouts.from_json(value)
            if (m.offset() or 0) + 1 >= high:
                return latest
    raise ScaleError(f"{name}: not read to its end ({high}) in {timeout_s} s")


def publish(settings: Settings, layouts: Layouts, timeout_s: float = 30.0) -> None:
    """Record new layouts (acknowledged by the broker before this returns)."""
    producer = broker.producer(settings)
    producer.produce(settings.generations_topic(), key=STATE_KEY, value=layouts.to_json())
    flush(producer, timeout_s)


class Watch:
    """A worker's view of the generations topic: the latest layouts, polled without waiting."""

    def __init__(self, settings: Settings, start: Layouts) -> None:
        self.settings = settings
        self.layouts = start
        self.consumer = make_consumer(settings, f"spma-watch-{uuid.uuid4().hex[:8]}")
        self.consumer.assign([TopicPartition(settings.generations_topic(), 0, OFFSET_BEGINNING)])

    def poll(self) -> Layouts:
        """The latest layouts recorded so far (reads what arrived since the last poll)."""
        for m in self.consumer.consume(100, timeout=0.0):
            value = m.value()
            if m.error() is None and m.key() == STATE_KEY and value:
                self.layouts = Layouts.from_json(value)
        return self.layouts

    def close(self) -> None:
        """Leave the topic."""
        self.consumer.close()
