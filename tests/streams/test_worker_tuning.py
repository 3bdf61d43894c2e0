"""Worker process knobs: the consumer's fetch wait and the garbage collector."""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as driver

from infra.settings import Settings
from streams.agents.private import limit_fetch_wait
from streams.agents.tuning import GC_THRESHOLDS, tune_gc


def test_the_worker_consumer_takes_our_fetch_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    thread = driver.AIOKafkaConsumerThread
    made: list[Any] = []

    def faust_creates(self: Any, transport: Any) -> Any:
        made.append(SimpleNamespace(_fetch_max_wait_ms=1500))
        return made[-1]

    monkeypatch.setattr(thread, "_spma_original_create", faust_creates, raising=False)
    monkeypatch.setattr(thread, "_create_worker_consumer", faust_creates)
    limit_fetch_wait(20)
    limit_fetch_wait(15)  # again: the last value wins, Faust's own method is wrapped once
    consumer = thread._create_worker_consumer(object(), object())
    assert consumer._fetch_max_wait_ms == 15 and len(made) == 1


def test_an_aiokafka_without_the_attribute_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    thread = driver.AIOKafkaConsumerThread
    monkeypatch.setattr(
        thread, "_spma_original_create", lambda self, t: SimpleNamespace(), raising=False
    )
    monkeypatch.setattr(thread, "_create_worker_consumer", lambda self, t: None)
    limit_fetch_wait(20)
    with pytest.raises(RuntimeError, match="aiokafka changed"):
        thread._create_worker_consumer(object(), object())


def test_the_default_wait_is_short() -> None:
    assert Settings().fetch_max_wait_ms == 20


def test_the_collector_runs_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)
