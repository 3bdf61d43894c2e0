"""Three Apache Kafka nodes, replication 3, min.insync.replicas 2: broker and controller faults.

The cluster is the test's own (three KRaft nodes, each a broker and a controller, on loopback),
not the session's broker. Topics and changelogs are created with replication factor 3 and
min.insync.replicas 2; the workers' producer is idempotent with acks=all (the default), the
test's own producer too. While 8,000 fills stream through two workers, the node that leads the
most partitions is killed with SIGKILL, later the active controller; both are restarted. At the
end every account's table record equals the offline replay of its inputs, every fill has exactly
one status id, and no output id is present twice with different content.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka_broker import KafkaCluster, missing_tools
from streams.kafka_io import Received
from tests.faults import scenario
from tests.faults.chaos import Chaos, Sent, assert_same_portfolios, chaos, replay, status_inputs
from tests.streams.worker_harness import Collector

pytestmark = [pytest.mark.broker, pytest.mark.slow]
FILLS = 8_000
ACCOUNTS = scenario.accounts(200)
OUTPUTS = ("margin-status", "market-broadcast", "dlq", "margin-calls", "liquidations", "adl")
ID_FIELDS = {
    "margin-status": "status_id",
    "margin-calls": "call_id",
    "liquidations": "order_id",
    "adl": "adl_id",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three KRaft nodes of the pinned Apache Kafka release."""
    why = missing_tools()
    if why:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("kafka-cluster")
    with KafkaCluster(nodes_count=3, heap_mb=512, root=root) as running:
        yield running


def _statuses(out: Collector) -> int:
    return len(out.records["margin-status"])


def _fault(
    cluster: KafkaCluster, c: Chaos, out: Collector, node_id: int, what: str
) -> tuple[float, float]:
    """Kill a node, keep the outputs flowing for a while, restart it. Seconds from the kill to
    500 more statuses, and from the restart until every partition of the run's topics has its
    three replicas in sync again."""
    killed = time.monotonic()
    before = _statuses(out)
    cluster.kill(node_id)
    out.wait(lambda x: _statuses(x) > before + 500, 120, f"statuses after killing the {what}")
    flowing = time.monotonic() - killed
    cluster.restart(node_id)
    started = time.monotonic()
    _wait_fully_replicated(cluster, c, 120)
    return flowing, time.monotonic() - started


def _wait_fully_replicated(cluster: KafkaCluster, c: Chaos, timeout_s: float) -> None:
    """Until every partition of the run's topics has all three replicas in sync."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
    prefix = c.settings.topic_prefix
    deadline = time.monotonic() + timeout_s
    short: list[str] = []
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        short = [
            f"{name}:{p.id}"
            for name, t in topics.items()
            if name.startswith(prefix) or name.startswith(c.harness.app_id)
            for p in t.partitions.values()
            if len(p.isrs) < 3
        ]
        if not short:
            return
        time.sleep(0.5)
    raise AssertionError(f"under-replicated after {timeout_s:g} s: {short[:10]}")


def _same_id_same_content(out: Collector) -> dict[str, int]:
    """Every output id names one content (a replay re-sends the same bytes); ids per topic."""
    seen: dict[str, int] = {}
    for topic, field in ID_FIELDS.items():
        by_id: dict[str, bytes | None] = {}
        for m in out.records[topic]:
            record = out.harness.codec.decode(topic, m.value)
            ident = getattr(record, field)
            if ident in by_id:
                assert by_id[ident] == m.value, f"{topic} id {ident} with two contents"
            by_id[ident] = m.value
        seen[topic] = len(by_id)
    return seen


def test_leader_and_controller_killed_under_load(cluster: KafkaCluster, tmp_path: Path) -> None:
    settings = {"replication_factor": 3, "min_insync_replicas": 2}
    with chaos(cluster.bootstrap, tmp_path, **settings) as c:
        out = c.collect(OUTPUTS)
        c.start(), c.start()
        t0 = scenario.start_time()
        sent = scenario.open_accounts(c, out, ACCOUNTS, t0)
        inputs = scenario.fills(c, ACCOUNTS, FILLS, t0, seed=3)
        fills: list[Sent] = c.produce(inputs[: FILLS // 3])
        topics = [c.settings.topic(t) for t in ("fills", "collateral", "market-broadcast")]
        counts = cluster.leader_counts(topics)
        leader = max(counts, key=lambda n: counts[n])
        leader_s = _fault(cluster, c, out, leader, f"partition leader (node {leader})")
        fills += c.produce(inputs[FILLS // 3 : 2 * FILLS // 3])
        controller = cluster.active_controller()
        assert controller is not None, "no active controller in the quorum state"
        controller_s = _fault(cluster, c, out, controller, f"controller (node {controller})")
        fills += c.produce(inputs[2 * FILLS // 3 :])
        c.wait_statuses(out, fills, timeout_s=240)
        out.settle(quiet_s=3.0, timeout_s=60)
        broadcasts: list[Received] = out.records["market-broadcast"]
        offline = replay(c, broadcasts, sent + fills)
        assert_same_portfolios(c.table(), offline)
        assert not out.records["dlq"], out.decoded("dlq")[:3]
        by_input = status_inputs(out.decoded("margin-status"))  # type: ignore[arg-type]
        topic = c.settings.topic("fills")
        missing = [f for f in fills if len(by_input.get((topic, f.partition, f.offset), ())) != 1]
        assert not missing, f"{len(missing)} fills without exactly one status id"
        ids = _same_id_same_content(out)
        assert ids["margin-status"] >= FILLS
        print(
            f"\nleader node {leader} ({counts[leader]} partitions): 500 statuses "
            f"{leader_s[0]:.1f} s after the kill, in sync {leader_s[1]:.1f} s after the restart; "
            f"controller node {controller}: {controller_s[0]:.1f} s and {controller_s[1]:.1f} s"
        )
