"""The Faust application of one worker: its agents, timers, rebalance hooks and web views.

The market agent validates market inputs (partitioned by underlying, so each source of an
underlying meets its peers) and broadcasts every accepted update to every partition of the
market-broadcast topic. The account agent reads fills, collateral and the broadcast, which are
co-partitioned by account. The fund agent reads the claims topic (one partition, one owner).
"""

from __future__ import annotations

from typing import Any

import faust

from infra.settings import Settings
from streams.codec import codec_from_settings
from streams.faust.web import advertised_url, install_views
from streams.faust.worker import ACCOUNT_INPUTS, FUND_INPUTS, MARKET_INPUTS, Worker


def create_app(settings: Settings) -> tuple[faust.App, Worker]:
    """The Faust app for the settings, with its agents, timer, rebalance hooks and web views."""

    app = faust.App(
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
        consumer_auto_offset_reset="earliest",
        web_port=settings.web_port,
        web_host=settings.web_host,
        canonical_url=advertised_url(settings),
        web_enabled=True,
        producer_linger=0.005,
        autodiscover=False,
        key_serializer="json",
        value_serializer="raw",
    )
    worker = Worker(settings, app, codec_from_settings(settings))
    install_views(app, worker)
    market_topic = app.topic(
        *(settings.topic(t) for t in MARKET_INPUTS),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    account_topic = app.topic(
        *(settings.topic(t) for t in ACCOUNT_INPUTS),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(market_topic, name="spma.market")
    async def market_agent(stream: Any) -> None:
        async for event in stream.events():
            await worker.guarded(worker.on_market_input, event)

    @app.agent(account_topic, name="spma.accounts")
    async def account_agent(stream: Any) -> None:
        within = settings.account_batch_within_ms / 1000.0
        async for events in stream.take_events(settings.account_batch_max, within):
            await worker.on_account_batch(events)

    fund_topic = app.topic(
        *(settings.topic(t) for t in FUND_INPUTS),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(fund_topic, name="spma.fund")
    async def fund_agent(stream: Any) -> None:
        async for event in stream.events():
            await worker.guarded(worker.on_fund_input, event)

    # Repeats follow event time (the newest input seen by the partition), so a replay or a
    # test clock gives the same calls; with live prices event time tracks the wall clock.
    @app.timer(interval=1.0)
    async def repeat_calls() -> None:
        for proc in list(worker.processors.values()):
            await worker.send(proc.on_timer(proc.market.as_of))

    @app.timer(interval=1.0)
    async def expire_fund() -> None:
        await worker.expire_fund(settings.fund_takeover_quiet_s)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        worker.forget({tp.partition for tp in revoked})
        worker.fund = None
        worker.params_restored = False

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        worker.forget({tp.partition for tp in assigned})
        worker.fund = None
        worker.params_restored = False

    return app, worker
