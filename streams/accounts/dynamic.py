"""Dynamic margin on an account partition: push the market state's effective PSR into the book.

The partition's MarketState tracks each underlying's effective PSR (engine.dynamic.PsrTracker,
fed by the EWMA vol of every MARK broadcast); when it differs from the PSR the book's scenario
grid was built with, the grid is rebuilt (core moves scale with it, tail weights are
min(1, PSR/|m|)) and the underlying's accounts are revalued in the same vectorised pass.
"""

from __future__ import annotations

from engine.book import MarginBook
from streams.market.state import MarketState

PSR_TOLERANCE = 1e-12


def apply_dynamic_psr(book: MarginBook, market: MarketState, underlying: str | None) -> bool:
    """Set the book's PSR of an underlying to the market's effective one; True when it changed."""
    if underlying is None or underlying not in book.underlyings:
        return False
    psr = market.psr.current().get(underlying)
    if psr is None or abs(book.underlyings[underlying].grid.psr - psr) <= PSR_TOLERANCE:
        return False
    book.set_psr(underlying, psr)
    return True


def effective_psr(book: MarginBook) -> dict[str, float]:
    """The PSR each underlying's scenario grid uses now (what a status reports)."""
    return {name: float(b.grid.psr) for name, b in book.underlyings.items()}
