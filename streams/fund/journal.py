"""The fund owner's recent events, for the risk console: the last insurance-fund events (fees,
payouts, shortfalls) and ADL orders it sent, newest last, in a bounded memory.

Why a journal and not the topics: the console answers from the workers' memory (no consumer of
its own to start, no replay of the output topics on every page load), and the fund's owner is the
one process that sees every fund event and ADL order as it makes them. It is not state: a new
owner after a rebalance starts with an empty journal (its balance and totals are in the fund's
table, and the output topics keep the full history).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.accounts.outputs import Output
from streams.records import AdlOrder, InsuranceFundEvent

KEPT = 200
"""Events of each kind kept (the console shows the newest)."""


@dataclass
class FundJournal:
    """The newest fund events and ADL orders the owner sent, as plain JSON-ready rows."""

    kept: int = KEPT
    events: deque[dict[str, Any]] = field(default_factory=deque)
    adl: deque[dict[str, Any]] = field(default_factory=deque)

    def note(self, outputs: Iterable[Output]) -> None:
        """Keep what the console shows of the fund's outputs (payout transfers and takeover
        orders are not kept: the events say the same)."""
        for output in outputs:
            record = output.record
            if isinstance(record, InsuranceFundEvent):
                self._keep(self.events, _event_row(record))
            elif isinstance(record, AdlOrder):
                self._keep(self.adl, _adl_row(record))

    def _keep(self, rows: deque[dict[str, Any]], row: dict[str, Any]) -> None:
        """Append a row, dropping the oldest beyond ``kept``."""
        rows.append(row)
        while len(rows) > self.kept:
            rows.popleft()


def _event_row(event: InsuranceFundEvent) -> dict[str, Any]:
    """A fund event as the console lists it."""
    return {
        "kind": event.kind.value,
        "amount": event.amount,
        "balance_after": event.balance_after,
        "account": event.account,
        "ts": event.ts.isoformat(),
    }


def _adl_row(order: AdlOrder) -> dict[str, Any]:
    """An ADL order as the console lists it: who is reduced, against whom, at what price."""
    return {
        "account": order.account,
        "counterparty": order.counterparty_account,
        "instrument": order.instrument,
        "side": order.side.value,
        "qty": order.qty,
        "price": order.price,
        "amount": order.amount,
        "ts": order.ts.isoformat(),
    }
