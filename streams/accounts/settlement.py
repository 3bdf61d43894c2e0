"""Settlement at expiry on the account side: every position of a family in an instrument the
exchange settled is closed at the instrument's settlement value, as a fill without fee at that
price would close it, so the cash it books (realised PnL, an option's intrinsic value) follows
the same rules as every fill's (streams/accounts/portfolio.py)."""

from __future__ import annotations

from engine.expiry import settlement_value
from engine.instruments import Instrument
from streams.accounts.portfolio import PortfolioRecord, apply_fill
from streams.accounts.subaccounts import every_row


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
