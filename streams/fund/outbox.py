"""The fund owner's outbox: a claims-topic input's encoded outputs kept in the fund's table
value, so that a replay after a crash sends again what the crash may have lost.

Why. The fund's owner writes its state to its (changelogged) table, then sends what the input
produced: payouts (collateral transfers), fund events, ADL orders. A worker killed between the two
left the state saying "claim handled" while the payout never reached the broker; the replayed
claim was then known by its id and produced nothing, and the account waited for its payout for
ever. As on the account side (accounts/outbox.py), the fund's table value now carries the offset
of the last input applied and the encoded outputs of the inputs not known delivered: an input at
or below that offset is a replay, and its stored outputs go out again byte for byte (their ids are
deterministic, so consumers drop a copy they already have). Outputs of the takeover timer belong
to no input and are not kept: a crash between its write and its send loses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.accounts.outbox import Deliveries, Encoded, Entry, entry, outputs_of

PARTITION = 0  # the claims topic has one partition


class FundOutbox:
    """The last claims-topic offset the fund applied, the outputs it keeps, and what this
    process knows of their delivery."""

    def __init__(self) -> None:
        self.applied = -1
        self.entries: list[Entry] = []
        self.deliveries = Deliveries()

    def load(self, data: Mapping[str, Any] | None) -> None:
        """Restore from the fund's table value (reading restarts from the committed offset)."""
        data = data or {}
        self.applied = int(data.get("applied", -1))
        self.entries = list(data.get("outbox", []))
        self.deliveries = Deliveries()

    def dump(self) -> dict[str, Any]:
        """The outbox's part of the fund's table value (entries known delivered pruned)."""
        self.entries = self.deliveries.keep(self.entries)
        return {"applied": self.applied, "outbox": self.entries}

    def handling(self, topic: str, offset: int) -> None:
        """An input of the claims topic is being handled."""
        self.deliveries.handling(topic, PARTITION, offset)

    def replayed(self, offset: int) -> bool:
        """True when the input at this offset was applied before."""
        return offset <= self.applied

    def resend(self, topic: str, offset: int) -> list[Encoded]:
        """A replayed input's stored outputs, pending again until acknowledged."""
        found = outputs_of(self.entries, topic, PARTITION, offset)
        self.deliveries.expect(topic, PARTITION, offset, len(found))
        return found

    def file(self, topic: str, offset: int, outputs: Sequence[Encoded]) -> None:
        """An input was applied: its offset, and its outputs kept until acknowledged."""
        self.applied = max(self.applied, offset)
        self.deliveries.expect(topic, PARTITION, offset, len(outputs))
        new = entry(topic, PARTITION, offset, outputs) if outputs else None
        self.entries = self.deliveries.keep(self.entries, new)

    def watch(self, topic: str, offset: int, futures: Sequence[Any]) -> None:
        """The outputs were handed to the producer: pending until acknowledged."""
        self.deliveries.watch(topic, PARTITION, offset, futures)
