"""What one fill does to a position and to cash: the quantity and average entry after it, the
PnL it realises, and the balances it moves.

Linear PnL is realised in the settlement currency, inverse PnL in the coin, option premiums and
fees in the settlement currency; a spot trade swaps coins for the settlement currency. The stream
applies a fill to an account's record with it (streams/accounts/portfolio.py) and the what-if to
a hypothetical portfolio (engine/whatif.py), so both move the same amounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.instruments import Instrument, InstrumentKind

EPSILON = 1e-12
"""A quantity or balance below this is closed (or empty)."""
DUST = 1e-9
"""A fill leaving less than this fraction of the sizes involved closes the position."""


@dataclass(frozen=True)
class FillOutcome:
    """A position after a fill (qty 0: closed; spot: untouched) and the cash the fill moved."""

    qty: float
    entry: float
    realised_usd: float
    cash: dict[str, float]


def average_entry(
    old_qty: float, old_entry: float, dq: float, price: float, inverse: bool
) -> float:
    """Entry after growing a position: arithmetic mean, harmonic for inverse (coin-exact PnL)."""
    total = abs(old_qty) + abs(dq)
    if inverse:
        return total / (abs(old_qty) / old_entry + abs(dq) / price)
    return (abs(old_qty) * old_entry + abs(dq) * price) / total


def closed_pnl(inst: Instrument, closed: float, entry: float, price: float) -> float:
    """PnL in USD of closing `closed` (signed like the old position) at price."""
    if inst.inverse:
        coins = closed * (1.0 / entry - 1.0 / price)
        return coins * price
    return closed * (price - entry) * inst.contract_size


def fill_outcome(
    inst: Instrument,
    old_qty: float,
    old_entry: float,
    signed_qty: float,
    price: float,
    fee: float,
    settlement: str,
) -> FillOutcome:
    """The position (old_qty at old_entry) after a fill of signed_qty at price, fee paid."""
    if inst.kind is InstrumentKind.SPOT:
        swap = {inst.underlying: signed_qty, settlement: -signed_qty * price - fee}
        return FillOutcome(old_qty, old_entry, 0.0, swap)
    if old_qty == 0.0:
        old_entry = price
    realised = 0.0
    if old_qty == 0.0 or math.copysign(1.0, old_qty) == math.copysign(1.0, signed_qty):
        new_qty = old_qty + signed_qty
        new_entry = average_entry(old_qty, old_entry, signed_qty, price, inst.inverse)
    else:
        closed = math.copysign(min(abs(signed_qty), abs(old_qty)), old_qty)
        realised = closed_pnl(inst, closed, old_entry, price)
        new_qty = old_qty + signed_qty
        same_side = math.copysign(1.0, new_qty) == math.copysign(1.0, old_qty)
        new_entry = old_entry if same_side else price
    cash: dict[str, float] = {}
    if inst.kind is InstrumentKind.OPTION:
        cash[settlement] = -signed_qty * price * inst.contract_size
    elif inst.inverse:
        cash[inst.underlying] = realised / price
    else:
        cash[settlement] = realised
    cash[settlement] = cash.get(settlement, 0.0) - fee
    dust = DUST * max(abs(old_qty), abs(signed_qty))  # float residue of a full close
    final = 0.0 if abs(new_qty) < max(dust, EPSILON) else new_qty
    return FillOutcome(final, new_entry, realised, cash)
