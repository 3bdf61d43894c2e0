"""The fund agent: the insurance fund's single owner reads the claims topic (one partition) in
order: liquidation fees, ADL candidates and bankruptcy claims (streams/fund/owner.py). A replayed
input sends its stored outputs again (streams/fund/outbox.py); positions no counterparty took go
to the book after a timeout, once the claims topic is quiet."""

from __future__ import annotations

import time
from typing import Any

import orjson

from infra.settings import Settings
from streams.accounts.outbox import Encoded
from streams.agents.private import writing_to
from streams.agents.recovery import RecoveryCheck
from streams.agents.sender import Sender
from streams.codec import AvroCodec
from streams.fund.batches import load_batches, save_batch, save_batches
from streams.fund.journal import FundJournal
from streams.fund.outbox import FundOutbox
from streams.fund.owner import FUND_KEY, FundOwner, check_fund_input
from streams.market.state import MarketState
from streams.records import AdlCandidate, InsuranceClaim, LiquidationFee
from streams.topics.catalog import Topic


class FundAgent:
    """The insurance fund's state, restored from its table, and its inputs' handling."""

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        market: MarketState,
        table: Any,
        sender: Sender,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.market = market  # the market agent's: its parameters set the ADL timeouts
        self.table = table
        self.sender = sender
        self.owner: FundOwner | None = None  # held only by the worker that reads the topic
        self.outbox = FundOutbox()
        self.journal = FundJournal()  # the newest events and ADL orders, for the risk console
        self.event_at = 0.0  # monotonic time of the last claims-topic event read or sent
        catchup = sender.metrics.catchup.labels("insurance-fund-state")
        self.recovery = RecoveryCheck(settings, table, catchup)  # checked before it is used

    def heard(self) -> None:
        """A claims-topic event was read or sent: the topic is not quiet."""
        self.event_at = time.monotonic()

    def reset(self) -> None:
        """Forget the state after a rebalance (the next event restores it from the table, checked
        against its changelog first)."""
        self.owner = None
        self.recovery.forget({0})

    def restore(self) -> FundOwner:
        """The fund's state, restored from its table the first time it is needed."""
        if self.owner is None:
            settlement = self.market.params.settlement_currency
            raw = self.table.get(FUND_KEY.format(currency=settlement))
            data = orjson.loads(raw) if raw else None
            self.owner = (
                FundOwner.from_dict(data)
                if data
                else FundOwner(currency=settlement, settlement_asset=settlement)
            )
            load_batches(self.table, self.owner)
            self.outbox.load(data)
        return self.owner

    async def on_input(self, event: Any) -> str:
        """Fees, ADL candidates and claims, in order; a replayed input sends its stored outputs
        again."""
        self.heard()
        msg = event.message
        value = self.codec.decode(Topic.INSURANCE_CLAIMS, msg.value)
        assert isinstance(value, InsuranceClaim | LiquidationFee | AdlCandidate)
        check_fund_input(value)
        if self.owner is None:
            self.recovery.ensure(0)
        owner = self.restore()
        self.outbox.handling(msg.topic, msg.offset)
        if self.outbox.replayed(msg.offset):
            await self.send(msg.topic, msg.offset, self.outbox.resend(msg.topic, msg.offset))
            return "duplicate"
        adl = self.market.params.adl
        owner.pending_timeout_s, owner.takeover_slippage = (
            adl.pending_timeout_s,
            adl.takeover_slippage,
        )
        if isinstance(value, AdlCandidate):
            owner.on_candidate(value)
            outputs = owner.retry() if owner.pending else []
        elif isinstance(value, LiquidationFee):
            outputs = owner.on_fee(value) + (owner.retry() if owner.pending else [])
        else:
            assert isinstance(value, InsuranceClaim)
            outputs = owner.on_claim(value)
        self.journal.note(outputs)
        encoded = [self.sender.encoded(o) for o in outputs]
        self.outbox.file(msg.topic, msg.offset, encoded)
        if outputs or not isinstance(value, AdlCandidate):
            self.save(owner)
        else:  # the batch it changed, before the consumer commits its offset
            save_batch(self.table, owner, value.partition)
        if encoded:  # the state that files them first (Sender.after_table_writes)
            await self.sender.after_table_writes()
        await self.send(msg.topic, msg.offset, encoded)
        return "applied"

    def save(self, owner: FundOwner) -> None:
        """Write the fund's state, with its outbox, to its table."""
        value = owner.to_dict() | self.outbox.dump()
        self.table[FUND_KEY.format(currency=owner.currency)] = orjson.dumps(value)
        save_batches(self.table, owner)

    async def send(self, topic: str, offset: int, outputs: list[Encoded]) -> None:
        """Send a claims-topic input's encoded outputs; pending in the fund's outbox until
        acknowledged."""
        futures = await self.sender.hand_over(outputs)
        self.outbox.watch(topic, offset, futures)

    async def expire(self, quiet_s: float) -> None:
        """Hand positions no counterparty took within the timeout to the book, once the claims
        topic has been quiet for a moment (no batch of candidates is half-read, and none this
        worker just sent is on its way: an account batch that ran long sends its partitions'
        candidates at its end, when the fund has heard nothing for that long)."""
        owner = self.owner
        if owner is None or not owner.pending:
            return
        if time.monotonic() - self.event_at < quiet_s:
            return
        outputs = owner.retry(takeover=True)
        self.journal.note(outputs)
        if outputs:
            # A timer has no current event to pick the partition: the fund's table has one.
            with writing_to(self.settings.topic(Topic.INSURANCE_CLAIMS), 0):
                self.save(owner)
            await self.sender.after_table_writes()
            await self.sender.send(outputs)
