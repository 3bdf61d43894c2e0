"""The Faust application of one worker: its agents, timers, rebalance hooks and web views.

The market agent reads market inputs (partitioned by underlying); the account agent reads fills,
collateral and the market broadcast, which are co-partitioned by account, a batch at a time; the
fund agent reads the claims topic (one partition, one owner). Each runs its input through the
worker's guard (streams/agents/guard.py), which sends rejected inputs to the dlq.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import faust

from infra.settings import Settings
from streams.agents import console
from streams.agents.generations import GenerationSwitch
from streams.agents.health import PROBE_EVERY_S
from streams.agents.metrics import package_version
from streams.agents.private import check_versions, forget_read_offsets, size_producer_buffer
from streams.agents.router import Router
from streams.agents.web import advertised_url, install_views
from streams.agents.worker import Worker
from streams.codec import codec_from_settings
from streams.scaling.control import Watch
from streams.scaling.layout import routed_inputs
from streams.topics.catalog import ACCOUNT_INPUTS, FUND_INPUTS, MARKET_INPUTS

log = logging.getLogger("spma")


def new_app(settings: Settings) -> faust.App:
    """Faust's app for the settings (no agents yet)."""
    return faust.App(
        settings.app_id,
        broker=settings.faust_broker_url(),
        broker_credentials=settings.faust_credentials(),
        store=settings.store_url,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        table_standby_replicas=settings.table_standby_replicas,
        recovery_consistency_check=settings.recovery_consistency_check,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_bind=settings.web_host,  # Faust binds 0.0.0.0 otherwise, whatever web_host says
        canonical_url=advertised_url(settings),
        web_enabled=True,
        web_router_enabled=False,  # Faust's views: a table's raw values to anyone who asks
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        producer_linger=0.005,
        autodiscover=False,
        key_serializer="json",
        value_serializer="raw",
    )


def inputs(app: faust.App, settings: Settings, names: Iterable[str]) -> Any:
    """One Faust topic over several input topics (full names), raw bytes (the codec decodes)."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def create_app(settings: Settings, watch: Watch | None = None) -> tuple[faust.App, Worker]:
    """The Faust app for the settings, with its agents, timers, rebalance hooks and web views;
    with a ``watch`` of the generations topic, the worker drains for a scale when asked."""
    check_versions()
    app = new_app(settings)
    worker = Worker(settings, app, codec_from_settings(settings))
    install_views(app, worker, console.VIEWS, console.OPEN)
    console.install_console(app, worker)
    market_inputs = [settings.topic(t) for t in MARKET_INPUTS]
    account_inputs = [settings.account_topic(t) for t in ACCOUNT_INPUTS]

    @app.agent(inputs(app, settings, market_inputs), name="spma.market")
    async def market_agent(stream: Any) -> None:
        async for event in stream.events():
            await worker.on_market_input(event)

    @app.agent(inputs(app, settings, account_inputs), name="spma.accounts")
    async def account_agent(stream: Any) -> None:
        within = settings.account_batch_within_ms / 1000.0
        async for events in stream.take_events(settings.account_batch_max, within):
            await worker.accounts.on_batch(events)

    @app.agent(inputs(app, settings, [settings.topic(t) for t in FUND_INPUTS]), name="spma.fund")
    async def fund_agent(stream: Any) -> None:
        async for event in stream.events():
            await worker.on_fund_input(event)

    if settings.generation:
        install_router(app, settings, Router(settings, app, worker.metrics))
    if watch is not None:
        worker.switch = GenerationSwitch(
            settings, app, worker.partitions.cursor, watch, worker.metrics
        )
        install_switch(app, worker.switch)

    # Repeats follow event time (the newest input seen by the partition), so a replay or a
    # test clock gives the same calls; with live prices event time tracks the wall clock. A
    # market update repeats the calls due at once (AccountProcessor.on_market); the timer finds
    # any left (none while event time moves only with market updates).
    # faust's app.timer is an untyped decorator
    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def repeat_calls() -> None:
        await worker.repeat_calls()

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]  # as above
    async def check_progress() -> None:
        await worker.ask_broker_ends()
        worker.check_progress()

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]  # as above
    async def repair_market_inputs() -> None:
        await worker.repair_market_inputs()

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]  # as above
    async def expire_fund() -> None:
        await worker.fund.expire(settings.fund_takeover_quiet_s)

    @app.timer(interval=PROBE_EVERY_S)  # type: ignore[untyped-decorator]  # as above
    async def probe_broker() -> None:
        await worker.health.watch()

    buffered = 4 * settings.account_batch_max + 1000  # a batch's table writes, and then some
    size_producer_buffer(app, buffered, worker.metrics.producer_buffer_full.inc)
    install_lifecycle(app, worker)
    return app, worker


def install_router(app: faust.App, settings: Settings, router: Router) -> None:
    """A generation g >= 1's router agent over the keyed input topics."""
    routed = [settings.topic(t) for t in routed_inputs()]

    @app.agent(inputs(app, settings, routed), name="spma.router")
    async def router_agent(stream: Any) -> None:
        async for event in stream.events():
            await router.on_event(event)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # see install_lifecycle
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        router.forget(revoked)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # as above
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        router.forget(assigned)


def install_switch(app: faust.App, switch: GenerationSwitch) -> None:
    """The generations topic watched every second; a rebalance restarts a drain's grace."""

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]  # faust's decorator is untyped
    async def watch_generations() -> None:
        await switch.tick()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # see install_lifecycle
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        switch.on_assigned()


def install_lifecycle(app: faust.App, worker: Worker) -> None:
    """The rebalance hooks (state forgotten, readiness and rebalance metrics) and the worker's
    start, assignment and stop lines, and the event loop's watchdog from start to stop."""

    # mode's SignalHandlerT does not admit a coroutine function's type (it calls and awaits it)
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        worker.health.on_revoked(time.monotonic())
        worker.forget({tp.partition for tp in revoked})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # as above
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        worker.health.on_assigned(time.monotonic())
        forget_read_offsets(app.consumer, assigned)
        worker.forget({tp.partition for tp in assigned})
        log.info("assigned %s", assignment_line(assigned))

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # as above
    async def on_rebalance_complete(sender: Any, **_: Any) -> None:
        worker.health.on_rebalance_complete(time.monotonic())

    @app.task  # type: ignore[untyped-decorator]  # Faust's task decorator is untyped
    async def started() -> None:
        worker.watchdog.start()  # on the running loop
        log.info("started %s", start_line(worker.settings, app))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # as above
    async def stopping(sender: Any, **_: Any) -> None:
        log.info("stopping (group %s)", worker.settings.app_id)
        worker.watchdog.stop()
        await asyncio.to_thread(worker.broker_ends.close)


def start_line(settings: Settings, app: faust.App) -> str:
    """The worker's start line: version, broker, group, topics, generation and partitions, web
    address."""
    topics = sorted({*MARKET_INPUTS, *ACCOUNT_INPUTS, *FUND_INPUTS})
    return (
        f"spma {package_version('spma')}: broker {settings.bootstrap_servers}, group "
        f"{settings.app_id}, topics {settings.topic_prefix}{{{','.join(topics)}}}, "
        f"generation {settings.generation} of {settings.layout_partitions} account partitions, "
        f"web http://{settings.web_host}:{settings.web_port} "
        f"(advertised {app.conf.canonical_url})"
    )


def assignment_line(assigned: Iterable[Any]) -> str:
    """The partitions of an assignment, by topic."""
    by_topic: dict[str, list[int]] = {}
    for tp in assigned:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    parts = [f"{topic} {sorted(ps)}" for topic, ps in sorted(by_topic.items())]
    return "; ".join(parts) or "no partition"
