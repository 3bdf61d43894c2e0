"""The worker's health and readiness, for ``/health`` and ``/ready`` (streams/agents/web.py).

Health: the process and its event loop answer (the view runs on the loop). Readiness: the broker
answers (a probe every ``PROBE_EVERY_S`` off the event loop, a plain metadata request, so a broker
that is gone shows within seconds whatever state the worker's own clients are in), the worker has
its assignment, is not in a rebalance and its tables are recovered. Each reason it is not ready is
named, so ``/ready``'s 503 says what to look at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra.settings import Settings
from streams.agents.metrics import WorkerMetrics

log = logging.getLogger("spma")

PROBE_EVERY_S = 3.0
"""How often the broker is probed."""
PROBE_TIMEOUT_S = 2.5
"""How long one probe waits for the broker's metadata."""
BROKER_GRACE_S = 7.0
"""How old the last successful probe may be for the broker to count as reachable."""
NOT_PROBED = "not probed yet"


class Health:
    """What the worker knows of its own condition."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.started = time.monotonic()
        self.broker_ok_at: float | None = None  # monotonic time of the last good probe
        self.broker_error = NOT_PROBED
        self.assigned = False  # an assignment arrived since the last revocation
        self.rebalance_began: float | None = None
        self.admin: AdminClient | None = None

    # ----- the broker ------------------------------------------------------------------------

    def probe(self) -> None:
        """Ask the broker for its metadata (blocking: run off the event loop)."""
        if self.admin is None:
            self.admin = AdminClient({**self.settings.kafka_client_config(), "log_level": 0})
        try:
            self.admin.list_topics(timeout=PROBE_TIMEOUT_S)
        except KafkaException as exc:
            self.broker_error = str(exc.args[0]) if exc.args else repr(exc)
            return
        self.broker_ok_at = time.monotonic()

    async def watch(self) -> None:
        """One probe, off the event loop (a timer calls this every ``PROBE_EVERY_S``)."""
        await asyncio.to_thread(self.probe)

    def broker_down_s(self, now: float) -> float | None:
        """Seconds since the broker last answered (since start when it never did), or None
        while it counts as reachable."""
        last = self.broker_ok_at
        if last is not None and now - last <= BROKER_GRACE_S:
            return None
        return now - (last if last is not None else self.started)

    # ----- the group -------------------------------------------------------------------------

    def on_revoked(self, now: float) -> None:
        """A rebalance began: partitions were revoked."""
        self.assigned = False
        if self.rebalance_began is None:
            self.rebalance_began = now

    def on_assigned(self, now: float) -> None:
        """A rebalance's assignment arrived."""
        self.assigned = True
        if self.rebalance_began is None:
            self.rebalance_began = now

    def on_rebalance_complete(self, now: float) -> None:
        """The tables' recovery after a rebalance ended: the rebalance is counted and timed."""
        if self.rebalance_began is not None:
            self.metrics.rebalances.inc()
            self.metrics.rebalance_time.observe(now - self.rebalance_began)
            self.rebalance_began = None

    # ----- the answers -----------------------------------------------------------------------

    def not_ready(self, app: Any, now: float) -> list[str]:
        """Why the worker is not ready (empty: it is)."""
        reasons = []
        down = self.broker_down_s(now)
        if down is not None and self.broker_ok_at is None and self.broker_error == NOT_PROBED:
            reasons.append("broker not probed yet")
        elif down is not None:
            reasons.append(f"broker unreachable for {down:.0f} s: {self.broker_error}")
        if not self.assigned:
            reasons.append("no partition assignment yet")
        if app.rebalancing:
            reasons.append("rebalancing")
        recovery = app.tables.recovery
        if recovery.in_recovery:
            remaining = recovery.active_remaining_total()
            reasons.append(f"recovering tables: {remaining} changelog records to go")
        return reasons

    def readiness(self, app: Any) -> tuple[int, dict[str, object]]:
        """``/ready``'s status and body; the ready gauge and the recovery gauges follow it."""
        recovery = app.tables.recovery
        self.metrics.recovery_remaining.labels("active").set(recovery.active_remaining_total())
        self.metrics.recovery_remaining.labels("standby").set(recovery.standby_remaining_total())
        reasons = self.not_ready(app, time.monotonic())
        self.metrics.ready.set(0 if reasons else 1)
        if reasons:
            return 503, {"ready": False, "reasons": reasons}
        return 200, {"ready": True}
