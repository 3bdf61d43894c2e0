"""One worker process: its tables, its topics, the shared market state and metrics, and the
three agents built on them (accounts, market, fund). The worker holds; the agents handle;
streams/agents/app.py wires them to Faust's agents, timers and rebalance hooks.

Every table write follows the event's partition (streams/agents/private.py, ``writing_to``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust

from infra.settings import Settings
from streams.agents.account_agent import AccountAgent
from streams.agents.broker_ends import BrokerEnds
from streams.agents.clock import Clock
from streams.agents.fund_agent import FundAgent
from streams.agents.generations import GenerationSwitch
from streams.agents.guard import Guard
from streams.agents.health import Health
from streams.agents.listing_view import ListingView
from streams.agents.market_agent import MarketAgent
from streams.agents.metrics import WorkerMetrics
from streams.agents.partitions import Partitions
from streams.agents.private import (
    assigned,
    committed_offset,
    consumer_ends,
    fetch_view,
    resume_fetching,
)
from streams.agents.progress import Progress
from streams.agents.sender import Sender
from streams.agents.skipped import SkippedInputs
from streams.agents.unfetched import Unfetched
from streams.agents.watchdog import LoopWatchdog, format_task_stacks
from streams.codec import AvroCodec
from streams.market.state import MarketState
from streams.topics.catalog import ACCOUNT_INPUTS, CATALOG, FUND_INPUTS, MARKET_INPUTS, Topic

STACKS_EVERY_S = 600.0
"""Least time between two stall warnings that carry the asyncio tasks' stacks."""
TABLES = ("portfolios", "insurance-fund-state", "risk-params-state", "market-quotes-state")
"""The worker's changelogged tables, by name (their changelogs: ``Settings.changelog_topic``)."""


class Worker:
    """Everything one worker process holds besides Faust's own machinery."""

    def __init__(self, settings: Settings, app: faust.App, codec: AvroCodec) -> None:
        self.settings = settings
        self.app = app
        self.codec = codec
        self.market = MarketState()  # the market agent's
        self.metrics = WorkerMetrics()
        self.health = Health(settings, self.metrics)
        portfolios, fund, params, quotes = TABLES
        self.table = self.new_table(
            portfolios, settings.layout_partitions, settings.portfolios_changelog()
        )
        self.fund_table = self.new_table(fund, 1)
        self.params_table = self.new_table(params, 1)
        self.quotes_table = self.new_table(quotes, settings.partitions)
        self.topics = {name: self.new_topic(name) for name in CATALOG}
        broadcast = settings.account_topic(Topic.MARKET_BROADCAST)  # the generation's own
        self.topics[Topic.MARKET_BROADCAST] = self.new_topic(broadcast, settings.layout_partitions)
        self.clock = Clock()
        self.sender = Sender(settings, app, codec, self.metrics)
        self.guard = Guard(settings, codec, self.topics[Topic.DLQ], self.metrics)
        self.guard.on_internal_error = self.on_internal_error
        self.partitions = Partitions(settings, self.table)
        self.progress = Progress(
            self.partitions.cursor, self.metrics, settings.stall_after_s, self.stall_stacks
        )
        self.broker_ends = BrokerEnds(settings)  # ends the consumer has not seen (progress)
        self.reported_ends: dict[tuple[str, int], int] = {}  # the broker's last answer
        self.stacks_at = -STACKS_EVERY_S  # when a stall's warning last carried the stacks
        self.unfetched = Unfetched()  # held partitions never fetched: resumed
        self.watchdog = LoopWatchdog(
            settings.loop_blocked_after_s, self.metrics.loop_blocked.observe
        )
        self.fund = FundAgent(settings, codec, self.market, self.fund_table, self.sender)
        self.markets = MarketAgent(
            settings,
            codec,
            self.market,
            self.params_table,
            self.quotes_table,
            self.topics[Topic.MARKET_BROADCAST],
            self.metrics,
            self.clock,
            ListingView(settings, codec),
        )
        self.skipped = SkippedInputs(  # market inputs
            settings, lambda: app.consumer, self.handle_market_input
        )
        self.switch: GenerationSwitch | None = None  # set when the worker watches for a scale
        self.accounts = AccountAgent(
            settings,
            codec,
            self.market,
            self.partitions,
            self.sender,
            self.guard,
            self.clock,
            self.metrics,
            self.fund.heard,
        )

    def on_internal_error(self, msg: Any) -> None:
        """After a bug met on an input (streams/agents/guard.py): what it may have changed in
        memory is dropped, and read again from the table by the next input (an account
        partition's processor, the fund's state)."""
        topic = self.settings.logical_topic(msg.topic)
        if topic in ACCOUNT_INPUTS and msg.topic == self.settings.account_topic(topic):
            self.partitions.forget({msg.partition})
        elif topic in FUND_INPUTS:
            self.fund.reset()

    async def on_market_input(self, event: Any) -> None:
        """A market input, after any its partition's consumer skipped at the assignment."""
        await self.skipped.on_input(event)

    async def on_fund_input(self, event: Any) -> None:
        """A claims-topic input through the guard."""
        await self.guard.run(self.fund.on_input, event)
        msg = event.message
        self.progress.done(msg.topic, msg.partition, msg.offset)

    async def handle_market_input(self, event: Any) -> None:
        """A market input through the guard (a rejected one to the dlq), counted as handled."""
        await self.guard.run(self.markets.on_input, event)
        msg = event.message
        self.progress.done(msg.topic, msg.partition, msg.offset)

    async def repair_market_inputs(self) -> None:
        """Market inputs the consumer saw arrive but never handed over, read and handled
        (streams/agents/skipped.py); not while a rebalance or a recovery is under way, nor while
        the worker drains for a scale (its market inputs wait, paused, for the next generation:
        streams/agents/generations.py)."""
        if self.draining():
            return
        if self.rebalancing():
            self.skipped.moved.clear()
            return
        topics = [self.settings.topic(t) for t in MARKET_INPUTS]
        await self.skipped.repair(self.input_ends(topics), time.monotonic())

    def draining(self) -> bool:
        """Whether the worker drains for a scale (it pauses its inputs on purpose)."""
        return self.switch is not None and self.switch.draining

    def rebalancing(self) -> bool:
        """Whether a rebalance or a table recovery is under way."""
        tables: Any = self.app.tables  # Faust's TableManager has a recovery; its type does not
        return bool(self.app.rebalancing or tables.recovery.in_recovery)

    def input_ends(self, topics: list[str]) -> dict[tuple[str, int], int]:
        """The end of each held partition of some input topics: as the consumer last saw it,
        or, for a partition it never fetched, as the broker last reported it."""
        unseen = {tp: end for tp, end in self.reported_ends.items() if tp[0] in topics}
        return {**unseen, **consumer_ends(self.app, topics)}

    def resumed_at(self, tp: tuple[str, int]) -> int:
        """The offset a partition resumed from at its assignment (0 when nothing was
        committed)."""
        return committed_offset(self.app.consumer, *tp) or 0

    def new_table(self, name: str, partitions: int, changelog: str | None = None) -> Any:
        """A changelogged table of str keys and bytes values with the store's sizes and the
        changelogs' topic configuration; its changelog is named by the settings (under the
        topic prefix; ``changelog`` when given), not by Faust."""
        return self.app.Table(
            name,
            default=None,
            partitions=partitions,
            key_type=str,
            value_type=bytes,
            options=self.settings.table_options(),
            extra_topic_configs=self.settings.changelog_topic_config(),
            changelog_topic=self.new_changelog(
                changelog or self.settings.changelog_topic(name), partitions
            ),
        )

    def new_changelog(self, name: str, partitions: int) -> Any:
        """A table's changelog topic, as Faust's Table would make it (compacted, internal, no
        acks awaited, a large buffer for recovery) but named by the settings."""
        return self.app.topic(
            name,
            key_type=str,
            value_type=bytes,
            key_serializer=self.app.conf.key_serializer,
            value_serializer=self.app.conf.value_serializer,
            partitions=partitions,
            compacting=True,
            acks=False,
            internal=True,
            config=self.settings.changelog_topic_config(),
            maxsize=131_072,
            allow_empty=True,
        )

    def new_topic(self, name: str, partitions: int | None = None) -> Any:
        """A topic of raw bytes keys and values (the codec does the rest); ``name`` logical, or
        full with its ``partitions`` (a generation's internal topic)."""
        return self.app.topic(
            self.settings.topic(name) if partitions is None else name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions or self.settings.partitions,
            internal=False,
        )

    def stall_stacks(self) -> str:
        """The asyncio tasks' stacks for a stall's warning: only while the broker answers (an
        outage explains a stall, and /ready says so; hundreds of lines then were a flood) and
        at most once every ``STACKS_EVERY_S``."""
        now = time.monotonic()
        if self.health.broker_down_s(now) is not None or now - self.stacks_at < STACKS_EVERY_S:
            return ""
        self.stacks_at = now
        return format_task_stacks()

    def input_topics(self) -> list[str]:
        """The full names of every input topic (account, market and fund inputs)."""
        topics = [self.settings.account_topic(t) for t in ACCOUNT_INPUTS]
        return topics + [self.settings.topic(t) for t in (*MARKET_INPUTS, *FUND_INPUTS)]

    def check_progress(self) -> None:
        """Lag and stalls of the inputs (streams/agents/progress.py): each partition's end as
        its consumer last saw it, or, where it has seen none, as the broker last reported it."""
        ends = self.input_ends(self.input_topics())
        handled = self.progress.cursor.next.keys() | self.progress.handled.keys()
        starts = {tp: self.resumed_at(tp) for tp in ends if tp not in handled}
        self.progress.check(ends, time.monotonic(), starts)

    async def ask_broker_ends(self) -> None:
        """Ask the broker for the ends of the held input partitions whose end the consumer has
        not seen (it never fetched them since its assignment); resume the fetch of those that
        hold records and stayed unfetched too long (streams/agents/unfetched.py)."""
        topics = self.input_topics()
        seen = consumer_ends(self.app, topics)
        held = assigned(self.app, topics)
        unseen = [tp for tp in held if tp not in seen]
        self.reported_ends = (
            await asyncio.to_thread(self.broker_ends.ends, unseen) if unseen else {}
        )
        if self.draining() or self.rebalancing():
            self.unfetched.since.clear()
            return
        starts = {tp: self.resumed_at(tp) for tp in unseen}
        due = self.unfetched.due(held, seen, self.reported_ends, starts, time.monotonic())
        for tp in due:
            self.unfetched.report(
                tp, self.reported_ends[tp] - starts[tp], fetch_view(self.app, *tp)
            )
        if due:
            resume_fetching(self.app, due)

    def forget(self, partitions: set[int]) -> None:
        """After a rebalance: drop the partitions' processors and the single owners' state
        (each is restored from its table by its next event)."""
        self.partitions.forget(partitions)
        self.accounts.recovery.forget(partitions)
        self.progress.forget(partitions)
        self.unfetched.forget()
        self.reported_ends = {}
        self.fund.reset()
        self.markets.reset()
        self.skipped.forget()

    async def repeat_calls(self) -> None:
        """Every partition's margin calls due again (event time: the newest input seen)."""
        for proc in list(self.partitions.processors.values()):
            await self.sender.send(proc.on_timer(proc.market.as_of))
