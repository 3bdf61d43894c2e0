"""What-if and pre-trade requests on a partition's account, free of HTTP and Kafka.

A request's JSON body is checked (a ``RequestError`` carries the HTTP status, the message and the
field at fault), the account's margined portfolio is read from its record, and the engine's
what-if (engine/whatif.py) runs on a private scratch book that shares the partition book's
valuation: nothing of the partition changes, its record, book and next status are the same as
without the request. The web view (streams/agents/web.py) finds the partition and serves the
answer; the benchmark (bench/bench_whatif.py) times this code on a worker-sized holding.

Instruments must be listed on the partition and not expired: the live worker answers for what it
could trade.

Pre-trade: one order ``{"instrument", "side": "buy"|"sell", "qty" > 0, "price" > 0}`` is accepted
when the account stays at or above IM after it (E_im >= IM), or when the order reduces risk (IM
falls and the shortfall to IM does not grow); the answer says why.
"""

from __future__ import annotations

import math
from typing import Any
from weakref import WeakKeyDictionary

import orjson

from engine.instruments import InstrumentError
from engine.margin import AccountMargin
from engine.portfolio import Portfolio, Position
from engine.whatif import (
    Changes,
    TradeFill,
    WhatIfBook,
    WhatIfError,
    WhatIfResult,
    changes_from_mapping,
)
from streams.accounts.holding import is_listed
from streams.accounts.processor import AccountProcessor
from streams.market.state import MarketState

MAX_BODY = 64 * 1024
"""Largest request body (bytes)."""
MAX_ITEMS = 100
"""Most fills, transfers or moves a what-if may carry."""
SIDES = {"buy": 1.0, "sell": -1.0}
_BOOKS: WeakKeyDictionary[AccountProcessor, WhatIfBook] = WeakKeyDictionary()


class RequestError(Exception):
    """A request that cannot be answered: HTTP status, message and the field at fault."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.field = status, error, field

    def body(self, account: str) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": self.error, "field": self.field, "account": account}


def parse_body(raw: bytes) -> Any:
    """The request's JSON (413 when too large, 400 when malformed; an empty body is {})."""
    if len(raw) > MAX_BODY:
        raise RequestError(413, f"body of {len(raw)} bytes, at most {MAX_BODY}", "body")
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"malformed JSON: {exc}", "body") from None


def portfolio_of(proc: AccountProcessor, account: str) -> Portfolio:
    """The account's margined portfolio as its record holds it."""
    record = proc.records[account]
    positions = tuple(Position(n, p.qty, p.entry) for n, p in record.positions.items())
    return Portfolio(account, dict(record.collateral), positions)


def _check_tradable(changes: Changes, market: MarketState) -> None:
    """Every fill's instrument listed and live on the partition (400 naming the fill)."""
    for i, fill in enumerate(changes.fills):
        field = f"fills[{i}].instrument"
        try:
            inst = market.instruments.get(fill.instrument)
        except InstrumentError as exc:
            raise RequestError(400, f"unknown instrument: {exc}", field) from None
        if not is_listed(inst, market):
            raise RequestError(400, f"unknown instrument: {inst.name} is not listed", field)
        if inst.expiry is not None and inst.expiry <= market.as_of:
            raise RequestError(400, f"{inst.name} has expired", field)
    for key in ("fills", "transfers", "moves", "vol_moves"):
        if len(getattr(changes, key)) > MAX_ITEMS:
            raise RequestError(400, f"at most {MAX_ITEMS} entries", key)


def _what_ifs(proc: AccountProcessor, changes: Changes) -> WhatIfBook:
    """The partition's what-if book, once the changes are checked tradable there."""
    _check_tradable(changes, proc.market)
    calc = _BOOKS.get(proc)
    if calc is None:
        calc = _BOOKS[proc] = WhatIfBook()
    return calc


def run_what_if(proc: AccountProcessor, account: str, changes: Changes) -> WhatIfResult:
    """The engine's what-if of an account of the partition (WhatIfError: a 400)."""
    calc = _what_ifs(proc, changes)
    try:
        return calc.what_if(proc.book, portfolio_of(proc, account), changes)
    except WhatIfError as exc:
        raise RequestError(400, str(exc), exc.field) from None


def run_margins(
    proc: AccountProcessor, account: str, changes: Changes
) -> tuple[AccountMargin, AccountMargin]:
    """The account's margin now and after the changes, unexplained (WhatIfError: a 400)."""
    calc = _what_ifs(proc, changes)
    try:
        return calc.margins(proc.book, portfolio_of(proc, account), changes)
    except WhatIfError as exc:
        raise RequestError(400, str(exc), exc.field) from None


def what_if_answer(proc: AccountProcessor, account: str, raw: bytes) -> dict[str, Any]:
    """The answer to ``POST /accounts/{id}/what-if`` (RequestError when the request is bad)."""
    try:
        changes = changes_from_mapping(parse_body(raw))
    except WhatIfError as exc:
        raise RequestError(400, str(exc), exc.field) from None
    result = run_what_if(proc, account, changes)
    return {"account": account, **result.to_dict()}


def _order(data: Any) -> TradeFill:
    """The pre-trade order as a signed fill (RequestError naming the field)."""
    if not isinstance(data, dict):
        raise RequestError(400, "must be a JSON object", "body")
    unknown = sorted(set(data) - {"instrument", "side", "qty", "price"})
    if unknown:
        raise RequestError(400, "unknown field (instrument, side, qty, price)", unknown[0])
    instrument = data.get("instrument")
    if not isinstance(instrument, str) or not instrument:
        raise RequestError(400, "must be a non-empty string", "instrument")
    side = data.get("side")
    if side not in SIDES:
        raise RequestError(400, 'must be "buy" or "sell"', "side")
    qty, price = (_positive(data.get(k), k) for k in ("qty", "price"))
    return TradeFill(instrument, SIDES[side] * qty, price)


def _positive(value: Any, field: str) -> float:
    """A finite positive number (RequestError naming the field)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(400, "must be a finite number", field)
    if value <= 0:
        raise RequestError(400, "must be positive", field)
    return float(value)


def pre_trade_answer(proc: AccountProcessor, account: str, raw: bytes) -> dict[str, Any]:
    """The answer to ``POST /accounts/{id}/pre-trade`` (RequestError when the request is bad)."""
    order = _order(parse_body(raw))
    before, after = run_margins(proc, account, Changes(fills=(order,)))
    accept, reason = verdict(before.im, before.equity_im, after.im, after.equity_im)
    return {
        "account": account,
        "accept": accept,
        "reason": reason,
        "instrument": order.instrument,
        "side": "buy" if order.qty > 0 else "sell",
        "qty": abs(order.qty),
        "price": order.price,
        "state_before": before.state,
        "state_after": after.state,
        "im_before": before.im,
        "im_after": after.im,
        "equity_im_before": before.equity_im,
        "equity_im_after": after.equity_im,
        "mm_after": after.mm,
        "equity_mm_after": after.equity_mm,
        "shortfall_after": max(after.im - after.equity_im, 0.0),
    }


def verdict(
    im_before: float, equity_im_before: float, im_after: float, equity_im_after: float
) -> tuple[bool, str]:
    """Accept at or above IM after the order, or when it reduces risk; the reason."""
    if equity_im_after >= im_after:
        return (
            True,
            f"at or above IM after the order: E_im {equity_im_after:,.2f} >= IM {im_after:,.2f}",
        )
    short_before = max(im_before - equity_im_before, 0.0)
    short_after = im_after - equity_im_after
    if im_after < im_before and short_after <= short_before:
        return True, (
            f"reduces risk: IM falls from {im_before:,.2f} to {im_after:,.2f} and the shortfall "
            f"to IM does not grow ({short_before:,.2f} to {short_after:,.2f})"
        )
    return False, (
        f"below IM after the order: E_im {equity_im_after:,.2f} < IM {im_after:,.2f} (short by "
        f"{short_after:,.2f}), and the order does not reduce risk"
    )
