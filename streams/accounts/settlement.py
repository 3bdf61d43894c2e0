"""Settlement at expiry on the account side: every position of a family in an instrument the
exchange settled is closed at the instrument's settlement value, as a fill without fee at that
price would close it, so the cash it books (realised PnL, an option's intrinsic value) follows
the same rules as every fill's (streams/accounts/portfolio.py)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.expiry import settlement_value
from engine.instruments import Instrument
from streams.accounts.portfolio import PortfolioRecord, apply_fill
from streams.accounts.subaccounts import every_row
from streams.market.state import MarketState
from streams.records import MarketUpdate


def settle_family(
    master: PortfolioRecord, inst: Instrument, delivery: float, settlement: str
) -> list[PortfolioRecord]:
    """Close the family's positions in ``inst`` at its settlement value for the delivery price;
    the records (rows of the family) that held one."""
    value = settlement_value(inst, delivery)
    closed = []
    for row in every_row(master):
        pos = row.positions.get(inst.name)
        if pos is not None:
            apply_fill(row, inst, -pos.qty, value, 0.0, settlement)
            closed.append(row)
    return closed


def settle_expired(
    masters: Iterable[PortfolioRecord], market: MarketState, update: MarketUpdate
) -> set[str]:
    """A settlement broadcast (already applied to ``market``) closes every position in its
    instrument at the settlement price: the masters whose families held one."""
    listing = update.instrument
    if listing is None or listing.settlement_price is None:
        return set()
    inst = market.instruments.get(listing.name)
    settlement = market.params.settlement_currency
    return {
        master.account
        for master in masters
        if settle_family(master, inst, listing.settlement_price, settlement)
    }


def settle_late(master: PortfolioRecord, inst: Instrument, market: MarketState) -> bool:
    """A fill from before the expiry that reaches the partition after the settlement closes at
    the settlement price at once (True when it did): no position outlives its instrument."""
    delivery = market.settled.get(inst.name)
    if delivery is None:
        return False
    return bool(settle_family(master, inst, delivery, market.params.settlement_currency))
