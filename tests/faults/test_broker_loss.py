"""An SRE's view of one worker on its own single-node Apache Kafka (not the session's broker, which
other tests share): a burst of inputs shows as consumer lag that falls back to zero, and when the
broker is killed, ``/ready`` turns 503 within seconds, saying why, while the worker logs a few lines
a minute rather than a flood; when the broker comes back, the worker recovers on its own and
``/ready`` is 200 again.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.kafka_broker import KafkaCluster, missing_tools
from streams.tools.loadgen import LoadPlan, run_load
from tests.streams.worker_harness import Harness, running

pytestmark = [pytest.mark.broker, pytest.mark.slow]
OUTAGE_S = 45.0
"""How long the broker stays down."""
MAX_LINES_PER_MINUTE = 12
"""Log lines a worker may write a minute while its broker is down (it wrote ~77 a second)."""


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A single Apache Kafka node this module may stop and start."""
    why = missing_tools()
    if why:
        pytest.skip(why)
    with KafkaCluster(nodes_count=1, heap_mb=384, root=tmp_path_factory.mktemp("kafka")) as node:
        yield node


def _get(port: int, path: str) -> tuple[int, dict[str, object] | str]:
    """A worker's answer (status, JSON body or text); 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""
    return status, orjson.loads(body) if path != "/metrics" else body.decode()


def _until(what: str, check: Callable[[], bool], timeout_s: float, h: Harness) -> float:
    """Seconds until check() holds, polled twice a second; fails with the logs past the bound."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout_s:g} s: {what}\n{h.log_tail()}")


def _lag(port: int, topic: str) -> float:
    """The worker's consumer lag summed over a topic's partitions (-1 when not answered)."""
    status, text = _get(port, "/metrics")
    if status != 200:
        return -1.0
    assert isinstance(text, str)
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "spma_consumer_lag" and s.labels["topic"] == topic
    )


def _lines(h: Harness) -> int:
    """Lines in the worker's log so far."""
    return len(h.logs[0].read_bytes().splitlines())


def test_lag_and_readiness_follow_the_broker(kafka: KafkaCluster, tmp_path: Path) -> None:
    with running(kafka.bootstrap, tmp_path, workers=1, partitions=2) as h:
        port = h.web_ports[0]
        _until("/ready 200 at start", lambda: _get(port, "/ready")[0] == 200, 90, h)
        assert _get(port, "/health") == (200, {"status": "ok"})

        fills = h.settings.topic("fills")
        plan = LoadPlan(rate=1e6, accounts=200, count=20_000, mix=(1.0, 0.0, 0.0))
        run_load(h.settings, plan, producer=h.producer, codec=h.codec)
        _until("a burst of 20,000 fills showing as lag", lambda: _lag(port, fills) > 0, 10, h)
        _until("the lag back to zero", lambda: _lag(port, fills) == 0, 180, h)

        before = _lines(h)
        kafka.kill(1)
        down = time.monotonic()
        _until("/ready 503 once the broker is gone", lambda: _get(port, "/ready")[0] == 503, 20, h)
        status, body = _get(port, "/ready")
        assert status == 503 and isinstance(body, dict)
        reasons = body["reasons"]
        assert isinstance(reasons, list) and any("broker unreachable" in r for r in reasons), body
        assert _get(port, "/health")[0] == 200, "the process itself is fine"
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        written = _lines(h) - before
        minutes = (time.monotonic() - down) / 60.0
        assert written <= MAX_LINES_PER_MINUTE * minutes, (written, h.log_tail())

        kafka.restart(1)
        back = "/ready 200 after the broker is back"
        _until(back, lambda: _get(port, "/ready")[0] == 200, 120, h)
        assert h.workers[0].poll() is None, "the worker recovered on its own"
