"""A worker recovering from a compacted changelog holds exactly the same table.

The portfolios changelog is compacted (Faust creates it so; streams.md). Here its segments roll
every second and the cleaner runs on any dirt, so that 40 accounts updated some 4,000 times leave
far fewer records than were written. A new worker (a fresh memory store, so it rebuilds the whole
table from the changelog) then takes over from the first: its table must equal the offline replay,
and the statuses of one more fill per account (computed on what it recovered) must equal the
offline ones. Tansu does not compact, so this runs on Apache Kafka (or another real broker).
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams import records as r
from tests.faults import scenario
from tests.faults.chaos import Chaos, Sent, assert_same_portfolios, chaos, replay, status_inputs

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ACCOUNTS = scenario.accounts(40)
FILLS = 4_000
FIELDS = ("equity", "equity_mm", "equity_im", "im", "mm", "es99")
COMPACT_FAST = {
    "segment.ms": "1000",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "1000",
}


def _changelog_count(c: Chaos) -> int:
    """Records the portfolios changelog holds now, from its first offset to its end."""
    topic = c.settings.model_copy(update={"app_id": c.harness.app_id}).changelog_topic("portfolios")
    consumer = Consumer(
        {
            **c.settings.kafka_client_config(),
            "group.id": "count",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(c.settings.partitions)]
    ends = {p.partition: consumer.get_watermark_offsets(p, 10.0)[1] for p in parts}
    consumer.assign(parts)
    count, done = 0, {p for p, end in ends.items() if end == 0}
    deadline = time.monotonic() + 60
    try:
        while len(done) < len(parts) and time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=0.5):
                if m.error() is None:
                    count += 1
                    if m.offset() + 1 >= ends[m.partition()]:
                        done.add(m.partition())
    finally:
        consumer.close()
    return count


def test_recovery_from_a_compacted_changelog(
    kafka_bootstrap: str, broker_kind: str, tmp_path: Path
) -> None:
    if broker_kind == "tansu":
        pytest.skip("Tansu does not compact topics (README: Tansu and Apache Kafka)")
    with chaos(kafka_bootstrap, tmp_path, changelog_config=COMPACT_FAST) as c:
        out = c.collect(("margin-status", "market-broadcast", "dlq"))
        first = c.start()
        t0 = scenario.start_time()
        sent = scenario.open_accounts(c, out, ACCOUNTS, t0)
        inputs = scenario.fills(c, ACCOUNTS, FILLS, t0, seed=4)
        fills: list[Sent] = []
        rng = random.Random(7)
        written = len(ACCOUNTS)
        deadline = time.monotonic() + 120
        compacted = False
        for start in range(0, FILLS, 500):  # in slices a second apart: segments roll
            fills += c.produce(inputs[start : start + 500])
            c.wait_statuses(out, fills, timeout_s=60)
            time.sleep(1.0)
        written += FILLS
        while time.monotonic() < deadline and not compacted:
            # A segment rolls when a record comes after segment.ms: a trickle of fills.
            n = len(fills)
            at = t0 + timedelta(milliseconds=FILLS + n)
            extra = [
                c.encode("fills", a, scenario.fill_record(n + i, a, rng, at))
                for i, a in enumerate(ACCOUNTS[:8])
            ]
            fills += c.produce(extra)
            written += len(extra)
            time.sleep(1.5)
            compacted = _changelog_count(c) < written // 2
        assert compacted, f"the changelog was not compacted: {_changelog_count(c)} of {written}"
        c.wait_statuses(out, fills, timeout_s=60)
        c.kill(first)
        c.start()  # a fresh memory store: the whole table from the compacted changelog
        at = t0 + timedelta(milliseconds=FILLS + len(fills) + 1)
        base = len(fills) + 100
        last = [
            c.encode("fills", a, scenario.fill_record(base + i, a, rng, at))
            for i, a in enumerate(ACCOUNTS)
        ]
        tail = c.produce(last)
        c.wait_statuses(out, tail, timeout_s=120)
        offline = replay(c, out.records["market-broadcast"], sent + fills + tail)
        assert_same_portfolios(c.table(), offline)
        statuses: list[r.MarginStatus] = out.decoded("margin-status")  # type: ignore[assignment]
        topic = c.settings.topic("fills")
        of_input = {
            (s.input_partition, s.input_offset): s for s in statuses if s.input_topic == topic
        }
        assert all(len(v) == 1 for k, v in status_inputs(statuses).items() if k[0] == topic)
        for f in tail:
            got, want = of_input[f.partition, f.offset], offline.statuses[f.input.key]
            assert got.state == want.state
            for key in FIELDS:
                assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-9), key
