"""One account's portfolio as plain data, and its offline JSON form.

Format: {"account": str, "collateral": {asset: amount}, "positions": [{"instrument": str,
"qty": number (signed; inverse contracts in USD notional), "entry_price": number}]}. Errors name
the field at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError
from engine.instruments import InstrumentError, InstrumentKind, parse_instrument


class PortfolioError(EngineError, ValueError):
    """A portfolio that cannot be read; the message names the field."""


@dataclass(frozen=True)
class Position:
    """A signed quantity of an instrument at an average entry price."""

    instrument: str
    qty: float
    entry_price: float


@dataclass(frozen=True)
class Portfolio:
    """An account: collateral balances by asset and positions."""

    account: str
    collateral: dict[str, float] = field(default_factory=dict)
    positions: tuple[Position, ...] = ()

    def position_tuples(self) -> list[tuple[str, float, float]]:
        """(instrument, qty, entry) per position, for MarginBook.load_portfolio."""
        return [(p.instrument, p.qty, p.entry_price) for p in self.positions]


def portfolio_from_mapping(data: Any) -> Portfolio:
    """Read and validate the offline portfolio format."""
    if not isinstance(data, Mapping):
        raise PortfolioError("portfolio: must be a JSON object")
    account = data.get("account")
    if not isinstance(account, str) or not account:
        raise PortfolioError("account: must be a non-empty string")
    collateral = _collateral(data.get("collateral", {}))
    raw = data.get("positions", [])
    if not isinstance(raw, list):
        raise PortfolioError("positions: must be a list")
    positions = tuple(_position(i, p) for i, p in enumerate(raw))
    return Portfolio(account, collateral, positions)


def _number(path: str, value: Any) -> float:
    """A finite number, or an error naming the path."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PortfolioError(f"{path}: must be a number")
    if not math.isfinite(value):
        raise PortfolioError(f"{path}: must be finite")
    return float(value)


def _collateral(raw: Any) -> dict[str, float]:
    """Asset balances (any sign: negative is borrowed)."""
    if not isinstance(raw, Mapping):
        raise PortfolioError("collateral: must be an object of asset: amount")
    return {str(asset): _number(f"collateral.{asset}", v) for asset, v in raw.items()}


def _position(i: int, raw: Any) -> Position:
    """One position entry."""
    path = f"positions[{i}]"
    if not isinstance(raw, Mapping):
        raise PortfolioError(f"{path}: must be an object")
    name = raw.get("instrument")
    if not isinstance(name, str):
        raise PortfolioError(f"{path}.instrument: must be a string")
    try:
        inst = parse_instrument(name)
    except InstrumentError as exc:
        raise PortfolioError(f"{path}.instrument: {exc}") from None
    if inst.kind is InstrumentKind.SPOT:
        raise PortfolioError(f"{path}.instrument: {name} is spot; put it in collateral")
    qty = _number(f"{path}.qty", raw.get("qty"))
    entry = _number(f"{path}.entry_price", raw.get("entry_price", 0.0))
    if entry <= 0 and not (inst.kind is InstrumentKind.OPTION and entry == 0):
        raise PortfolioError(f"{path}.entry_price: must be positive")
    return Position(name, qty, entry if entry > 0 else 1.0)
