"""The what-if calculator: one portfolio and one market snapshot in, one account's margin out.

It runs the same book code as the stream (a book of one account), so `spma margin` and the
margin-status records agree to rounding. The result is an ``AccountMargin``; its ``to_dict()`` is
the JSON `spma margin` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.book import MarginBook
from engine.errors import EngineError
from engine.instruments import InstrumentError
from engine.margin import AccountMargin
from engine.market import MarketSnapshot, market_from_mapping
from engine.params import RiskParams
from engine.portfolio import Portfolio, PortfolioError, portfolio_from_mapping
from engine.risk_arrays import MissingMarketData


class OfflineError(EngineError, ValueError):
    """The inputs do not fit together (an instrument or asset the market cannot price)."""


def margin_of(portfolio: Portfolio, market: MarketSnapshot, params: RiskParams) -> AccountMargin:
    """The margin of one portfolio in one market (``to_dict()``: the `spma margin` mapping)."""
    book = MarginBook(params, market)
    try:
        book.load_portfolio(portfolio.account, portfolio.position_tuples(), portfolio.collateral)
    except (MissingMarketData, InstrumentError) as exc:
        raise OfflineError(str(exc)) from None
    return book.margin([portfolio.account]).account(0)


def margin_from_mappings(
    portfolio: Mapping[str, Any], market: Mapping[str, Any], params: RiskParams | None = None
) -> AccountMargin:
    """Parse both JSON mappings and compute (errors name the field at fault)."""
    parsed = portfolio_from_mapping(portfolio)
    snapshot = market_from_mapping(market)
    return margin_of(parsed, snapshot, params or RiskParams())


__all__ = ["OfflineError", "PortfolioError", "margin_from_mappings", "margin_of"]
