"""The market agent's view of the listed underlyings (streams/market/listings.py): the listings it
accepts itself, and the whole instruments topic, read on to its end whenever market data names an
underlying not known yet. The topic is keyed by instrument, so the agent's own partitions of it
do not list every underlying its quotes, books and surfaces name.
"""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import KafkaException

from engine.params import RiskParams
from infra.settings import Settings
from streams.codec import AvroCodec
from streams.errors import InputRejected
from streams.kafka_io import Received, TopicFollower
from streams.market.listings import Listings
from streams.records import DlqReason, InstrumentRecord
from streams.topics.catalog import Topic

log = logging.getLogger("spma")

REREAD_S = 0.25
"""The instruments topic is read again at most this often (a flood of market data of an unknown
underlying must not turn into a flood of reads); in between, an unknown underlying is refused."""


class ListingView:
    """Which underlyings are listed, as far as the instruments topic says now."""

    def __init__(self, settings: Settings, codec: AvroCodec) -> None:
        self.codec = codec
        self.listings = Listings()
        self.follower = TopicFollower(settings, settings.topic(Topic.INSTRUMENTS))
        self.read_at = -REREAD_S  # monotonic time of the last read

    def take(self, record: InstrumentRecord) -> None:
        """A listing the market agent accepted."""
        self.listings.take(record)

    async def check(self, underlying: str, params: RiskParams) -> None:
        """Market data of the underlying may be taken; else InputRejected (UNKNOWN_UNDERLYING).
        An underlying not known yet is looked up on the instruments topic, read on to its end
        (at most every ``REREAD_S``)."""
        if self.listings.knows(underlying, params):
            return
        if time.monotonic() - self.read_at >= REREAD_S and not await self.catch_up(underlying):
            return
        if not self.listings.knows(underlying, params):
            raise InputRejected(
                DlqReason.UNKNOWN_UNDERLYING,
                f"{underlying[:80]!r}: no instrument lists it and the parameters do not price it "
                "as collateral",
            )

    async def catch_up(self, underlying: str) -> bool:
        """Read the instruments topic on to its end, off the event loop. False when the broker
        cannot be read: the input is then let through, as before listings were checked, with a
        warning (valid market data must not be lost to a broker's hiccup)."""
        self.read_at = time.monotonic()
        try:
            for m in await asyncio.to_thread(self.follower.read_new):
                self.read(m)
        except KafkaException as exc:
            log.warning("instruments topic not read (%s): %s let through", exc, underlying)
            return False
        return True

    def read(self, m: Received) -> None:
        """One record of the instruments topic (an undecodable one lists nothing)."""
        if m.value is None:
            return
        try:
            value = self.codec.decode(Topic.INSTRUMENTS, m.value)
        except InputRejected:
            return
        if isinstance(value, InstrumentRecord):
            self.listings.take(value)
