"""What an expired contract pays: the price its positions close at, from the exchange's delivery
price of the underlying (a future at that price; an option at its intrinsic value against it,
per unit of the underlying, in USD like its premium)."""

from __future__ import annotations

import math

from engine.instruments import Instrument, InstrumentError, InstrumentKind, OptionType


def settlement_value(inst: Instrument, delivery: float) -> float:
    """The closing price of a position in ``inst`` settled at the delivery price; InstrumentError
    for a contract that never expires (spot, perpetual) or a delivery price that is not
    positive."""
    if inst.expiry is None or inst.kind in (InstrumentKind.SPOT, InstrumentKind.PERPETUAL):
        raise InstrumentError(f"{inst.name} has no expiry to settle at")
    if not (math.isfinite(delivery) and delivery > 0.0):
        raise InstrumentError(f"{inst.name}: delivery price {delivery!r} is not positive")
    if inst.kind is InstrumentKind.FUTURE:
        return delivery
    assert inst.strike is not None
    if inst.option_type is OptionType.CALL:
        return max(delivery - inst.strike, 0.0)
    return max(inst.strike - delivery, 0.0)
