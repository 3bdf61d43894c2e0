"""Process knobs for a worker, set before its app starts: Faust's fetch wait, its producer's
idempotence, and the garbage collector's thresholds.

The fetch wait. Faust creates its worker consumer with aiokafka's ``fetch_max_wait_ms`` fixed at
1,500 ms. Apache Kafka answers a fetch as soon as a record is there, so the wait only bounds an
idle poll; the embedded broker (Tansu 0.6) holds the fetch for much of it even when records
arrive, and that delay lands on every input: with 1,500 ms a fill's status came back after
0.4 s at 200 fills a second and 1.4 s at 1,000; with 10 ms, 43 ms and 54 ms (p50), next to the
~30 ms the broker itself takes to hand a record from a producer to a consumer
(bench/bench_pipeline.py measures both). A short wait costs an idle worker a few more empty
fetches a second, nothing else.
"""

from __future__ import annotations

import gc
from typing import Any

_WAIT_ATTRIBUTE = "_fetch_max_wait_ms"  # where aiokafka keeps it until the consumer starts


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Make every worker consumer Faust creates from now on wait at most `max_wait_ms` for a
    fetch (idempotent; the last value wins)."""
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    original = getattr(thread, "_spma_original_create", thread._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        if not hasattr(consumer, _WAIT_ATTRIBUTE):
            raise RuntimeError("aiokafka changed: AIOKafkaConsumer has no fetch wait attribute")
        setattr(consumer, _WAIT_ATTRIBUTE, max_wait_ms)
        return consumer

    thread._spma_original_create = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = create  # type: ignore[method-assign]


def make_producers_idempotent() -> None:
    """Make every aiokafka producer Faust creates from now on idempotent with acks=all (Faust
    asks for it only inside transactions): a retried send after a leader change or a lost
    acknowledgement is then written once. Idempotent."""
    from faust.transport.drivers import aiokafka as driver

    producer = driver.Producer
    original = getattr(producer, "_spma_original_extra", producer._settings_extra)

    def extra(self: Any) -> Any:
        return {**original(self), "acks": "all", "enable_idempotence": True}

    producer._spma_original_extra = original  # type: ignore[attr-defined]
    producer._settings_extra = extra  # type: ignore[method-assign]


GC_THRESHOLDS = (50_000, 20, 100)
"""A worker allocates some hundreds of objects a fill, nearly all freed by reference counting,
and holds hundreds of thousands (records, positions) that every full collection walks. With
Python's defaults (700, 10, 10) a young collection ran every few fills and a full one every
~70,000 allocations, each full one pausing the worker for tens of milliseconds: at 600 fills a
second the fill-to-status p99 was 240-370 ms, and 160 ms with the collector off; with these
thresholds, 94 ms (p50 unchanged, about 50 ms; bench/bench_pipeline.py)."""


def tune_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect cyclic garbage less often (young generation every `thresholds[0]` allocations)."""
    gc.set_threshold(*thresholds)
