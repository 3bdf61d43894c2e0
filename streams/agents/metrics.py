"""Prometheus metrics of one worker (streams.md, Operations), in a registry of its own.

Each worker holds a ``WorkerMetrics``: counters and histograms updated on the hot path (a label
lookup and an increment, nothing per account), and gauges that describe state (accounts by state,
the insurance fund's balance) set from that state when Prometheus scrapes ``/metrics``. The
registry is the worker's own, not prometheus-client's global default, so that several workers or
apps in one process (tests, the demo) never collide over metric names.

Names:

- ``spma_events_total{topic, outcome}``: inputs handled, by logical topic and outcome: ``applied``,
  ``duplicate`` (a fill or transfer at an offset already applied, skipped on a replay),
  ``conflated`` (a market input absorbed without a broadcast) or ``dlq``;
- ``spma_processing_seconds{kind}``: time to handle one input, by input kind (its logical topic;
  a fill's or a transfer's own time plus its share of its wave's margin pass);
- ``spma_account_batch_size``: account inputs handled per batch (streams/accounts/batch.py);
- ``spma_revaluation_seconds``: time of a partition's revaluation on one market update;
- ``spma_dlq_records_total{reason}``: records sent to the dlq, by reason;
- ``spma_outputs_total{topic}``: records sent, by logical topic;
- ``spma_consumer_lag{topic, partition}``: records of an account input partition behind the end
  the consumer last saw; ``spma_partition_stalled{topic, partition}``: 1 while such records wait
  and nothing was handled for ``stall_after_s`` (streams/agents/progress.py);
- ``spma_table_catchup_keys_total{table}``: keys a table lacked of its changelog's latest writes
  when the worker checked it before use, written from the changelog (streams/agents/recovery.py);
- ``spma_accounts{state}``: margined accounts (masters and isolated sub-accounts) by state, over
  the partitions this worker owns;
- ``spma_insurance_fund_balance{currency}``: the fund's balance, on the worker that owns it;
- ``spma_input_age_seconds{topic}``: now minus the event time of the newest input handled of a
  topic (an input topic whose producer stopped, or a worker that fell behind, shows here);
- ``spma_mark_stale{underlying}``: 1 while the oracle's mark of an underlying this worker's market
  agent prices is STALE;
- ``spma_rebalances_total``, ``spma_rebalance_seconds``: the group's rebalances this worker took
  part in, and the time from the revocation to the end of the tables' recovery;
- ``spma_table_recovery_remaining{kind}``: changelog records still to recover (active, standby);
- ``spma_ready``: 1 when ``/ready`` answers 200 (streams/agents/health.py);
- ``spma_producer_buffer_messages``, ``spma_producer_buffer_full_total``: table writes waiting
  in Faust's producer buffer, and the times it was full (the agent then waits for it to drain);
- ``spma_event_loop_blocked_seconds``: how late the event loop's watchdog tick (every second)
  ran, the time the loop was blocked by a synchronous call (streams/agents/watchdog.py);
- ``spma_build_info{version, python, faust}``, and prometheus-client's ``process_*`` (CPU, RSS,
  open files) and ``python_info``.
"""

from __future__ import annotations

import platform
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from engine.states import STATES
from streams.accounts.processor import AccountProcessor
from streams.accounts.subaccounts import rows_of
from streams.topics.catalog import Topic

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
LOOP_BLOCKED_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
REBALANCE_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
OUTCOMES = ("applied", "duplicate", "conflated", "dlq")


class WorkerMetrics:
    """The metrics of one worker and the registry that renders them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "spma_events_total",
            "Inputs handled, by logical topic and outcome",
            ("topic", "outcome"),
            registry=self.registry,
        )
        self.processing = Histogram(
            "spma_processing_seconds",
            "Time to handle one input, by input kind",
            ("kind",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.revaluation = Histogram(
            "spma_revaluation_seconds",
            "Time to revalue a partition's accounts on one market update",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "spma_account_batch_size",
            "Account inputs handled per batch",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.outliers = Counter(
            "spma_oracle_outliers",
            "Oracle quotes set aside as outliers (too far from their peers), by underlying and "
            "source: a source that drifts shows here",
            ("underlying", "source"),
            registry=self.registry,
        )
        self.dlq = Counter(
            "spma_dlq_records",
            "Records sent to the dlq, by reason",
            ("reason",),
            registry=self.registry,
        )
        self.lag = Gauge(
            "spma_consumer_lag",
            "Records of an account input partition behind the end the consumer last saw",
            ("topic", "partition"),
            registry=self.registry,
        )
        self.stalled = Gauge(
            "spma_partition_stalled",
            "1 while an account input partition has records waiting and none was handled for "
            "stall_after_s",
            ("topic", "partition"),
            registry=self.registry,
        )
        self.catchup = Counter(
            "spma_table_catchup_keys",
            "Keys a table lacked of its changelog when checked before use, caught up from it",
            ("table",),
            registry=self.registry,
        )
        self.outputs = Counter(
            "spma_outputs",
            "Records sent, by logical topic",
            ("topic",),
            registry=self.registry,
        )
        self.accounts = Gauge(
            "spma_accounts",
            "Margined accounts by state, over the partitions this worker owns",
            ("state",),
            registry=self.registry,
        )
        self.fund_balance = Gauge(
            "spma_insurance_fund_balance",
            "Insurance fund balance, on the worker that owns the fund",
            ("currency",),
            registry=self.registry,
        )
        for state in STATES:
            self.accounts.labels(state.value).set(0)
        self.add_state_gauges()
        self.add_process_metrics()
        self.newest_event: dict[str, float] = {}  # logical topic -> newest event time handled

    def add_state_gauges(self) -> None:
        """Gauges of the worker's condition, set on scrape (``streams/agents/health.py``)."""
        self.input_age = Gauge(
            "spma_input_age_seconds",
            "Now minus the event time of the newest input handled, by logical topic",
            ("topic",),
            registry=self.registry,
        )
        self.mark_stale = Gauge(
            "spma_mark_stale",
            "1 while the mark of an underlying this worker's market agent prices is STALE",
            ("underlying",),
            registry=self.registry,
        )
        self.rebalances = Counter(
            "spma_rebalances",
            "Rebalances of the group this worker took part in",
            registry=self.registry,
        )
        self.rebalance_time = Histogram(
            "spma_rebalance_seconds",
            "Time from a revocation to the end of the tables' recovery",
            buckets=REBALANCE_BUCKETS,
            registry=self.registry,
        )
        self.recovery_remaining = Gauge(
            "spma_table_recovery_remaining",
            "Changelog records still to recover into the tables, by kind (active, standby)",
            ("kind",),
            registry=self.registry,
        )
        self.ready = Gauge(
            "spma_ready", "1 when the worker is ready (/ready answers 200)", registry=self.registry
        )
        self.producer_buffer = Gauge(
            "spma_producer_buffer_messages",
            "Table writes waiting in the producer buffer",
            registry=self.registry,
        )
        self.producer_buffer_full = Counter(
            "spma_producer_buffer_full",
            "Times the producer buffer was full (the agent waited for it to drain)",
            registry=self.registry,
        )
        self.generation = Gauge(
            "spma_generation",
            "The account layout the worker runs (streams/scaling/), labelled with its partitions",
            ("partitions",),
            registry=self.registry,
        )
        self.routed = Counter(
            "spma_routed_total",
            "Account inputs re-keyed into the generation's internal topics, by logical topic",
            ("topic",),
            registry=self.registry,
        )
        self.loop_blocked = Histogram(
            "spma_event_loop_blocked_seconds",
            "How late the event loop's watchdog tick (every second) ran: the time the loop was "
            "blocked",
            buckets=LOOP_BLOCKED_BUCKETS,
            registry=self.registry,
        )
        self.draining = Gauge(
            "spma_draining",
            "1 while the worker drains its generation for a scale (inputs paused)",
            registry=self.registry,
        )

    def add_process_metrics(self) -> None:
        """The process's CPU, memory and open files, Python's version, and the build."""
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        info = Gauge(
            "spma_build_info",
            "The worker's build: 1, labelled with the versions",
            ("version", "python", "faust"),
            registry=self.registry,
        )
        info.labels(
            package_version("spma"), platform.python_version(), package_version("faust-streaming")
        ).set(1)

    # ----- the hot path ---------------------------------------------------------------------

    def handled(self, topic: str, outcome: str, seconds: float) -> None:
        """One input handled: its outcome and how long it took."""
        self.events.labels(topic, outcome).inc()
        self.processing.labels(topic).observe(seconds)

    def batch(self, size: int) -> None:
        """One batch of account inputs handled."""
        self.batch_size.observe(size)

    def rejected(self, reason: str) -> None:
        """One record sent to the dlq."""
        self.dlq.labels(reason).inc()
        self.outputs.labels(Topic.DLQ).inc()

    def set_aside(self, underlying: str, source: str) -> None:
        """One oracle quote set aside as an outlier."""
        self.outliers.labels(underlying, source).inc()

    def event_time(self, topic: str, ts: float) -> None:
        """An input of a logical topic stamped ``ts`` (epoch seconds) was handled."""
        if ts > self.newest_event.get(topic, 0.0):
            self.newest_event[topic] = ts

    def sent(self, topic: str, count: int = 1) -> None:
        """Records sent to a topic."""
        self.outputs.labels(topic).inc(count)

    # ----- state, on scrape -----------------------------------------------------------------

    def set_accounts(self, counts: Mapping[str, int]) -> None:
        """Accounts by state (every state is set, so a state that emptied reads 0)."""
        for state in {*(s.value for s in STATES), *counts}:
            self.accounts.labels(state).set(counts.get(state, 0))

    def set_input_ages(self, now: float | None = None) -> None:
        """Each input topic's age: now minus the newest event time handled."""
        now = time.time() if now is None else now
        for topic, ts in self.newest_event.items():
            self.input_age.labels(topic).set(max(0.0, now - ts))

    def set_fund_balance(self, currency: str, balance: float) -> None:
        """The insurance fund's balance in a currency."""
        self.fund_balance.labels(currency).set(balance)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (text or OpenMetrics, as the scraper accepts) and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def count_states(processors: Iterable[AccountProcessor]) -> dict[str, int]:
    """Margined rows (masters and isolated sub-accounts) by state over some partitions."""
    tally: Tally[str] = Tally()
    for proc in processors:
        tally.update(row.record.state for row in rows_of(proc.records.values()).values())
    return dict(tally)


def package_version(name: str) -> str:
    """An installed distribution's version ('unknown' when it is not installed as one)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
