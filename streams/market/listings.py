"""The underlyings someone lists, for the market agent: quotes, depth and vol surfaces of any
other underlying go to the dlq (UNKNOWN_UNDERLYING) rather than into the oracle or the broadcast.

The instruments topic is keyed by instrument, not by underlying, so a market agent's own
partitions of it list only some underlyings; the whole topic is read for the others
(streams/agents/listing_view.py). A listing counts when it would be taken: listed before its
expiry.
"""

from __future__ import annotations

from engine.params import RiskParams
from streams.market.state import epoch
from streams.records import InstrumentRecord, InstrumentState


def lists(record: InstrumentRecord) -> bool:
    """Whether a record of the instruments topic (valid: the codec checked it) lists its
    underlying: a listing before its expiry, or a later state of an instrument (an expiry, a
    settlement) that was listed."""
    if record.state is not InstrumentState.LISTED:
        return True
    return record.expiry is None or epoch(record.expiry) > epoch(record.ts)


class Listings:
    """The underlyings of the instruments listed so far."""

    def __init__(self) -> None:
        self.underlyings: set[str] = set()

    def take(self, record: InstrumentRecord) -> None:
        """A record of the instruments topic: its underlying is known when it lists it."""
        if lists(record):
            self.underlyings.add(record.underlying)

    def knows(self, underlying: str, params: RiskParams) -> bool:
        """Market data of the underlying is wanted: something lists it, or the parameters price
        it as collateral (``RiskParams.is_unlisted_collateral``)."""
        return underlying in self.underlyings or params.is_unlisted_collateral(underlying)
