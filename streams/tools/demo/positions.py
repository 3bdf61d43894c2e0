"""Every account's positions at any event time of the demo, from the fills on the fills topic.

The margin-status topic says an account's equity and requirements, not what it held; the demo's
report shows each account's worst moment with its positions then. The observer hands this ledger
every fill it reads (the exchange's and the simulator's liquidation and ADL fills alike); a fill
id is counted once, as the engine applies it once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from streams.records import Fill

DUST = 1e-12
"""A net quantity this close to zero is a closed position."""


def row_key(account: str, sub_account: str | None) -> str:
    """The account a fill or a status is about: the master, or 'master/sub' for a sub-account."""
    return f"{account}/{sub_account}" if sub_account else account


@dataclass
class FillLedger:
    """Each account's fills in event-time order: (time, instrument, signed quantity)."""

    fills: dict[str, list[tuple[datetime, str, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    seen: set[str] = field(default_factory=set)

    def add(self, fill: Fill) -> None:
        """Take a fill (once per fill id)."""
        if fill.fill_id in self.seen:
            return
        self.seen.add(fill.fill_id)
        rows = self.fills[row_key(fill.account, fill.sub_account)]
        rows.append((fill.ts, fill.instrument, fill.signed_qty))
        if len(rows) > 1 and rows[-2][0] > fill.ts:  # fills of one account come in order
            rows.sort(key=lambda row: row[0])

    def positions_at(self, account: str, ts: datetime) -> dict[str, float]:
        """The account's open positions after every fill stamped at or before ``ts``."""
        held: dict[str, float] = defaultdict(float)
        for at, instrument, qty in self.fills.get(account, []):
            if at > ts:
                break
            held[instrument] += qty
        return {name: qty for name, qty in sorted(held.items()) if abs(qty) > DUST}
