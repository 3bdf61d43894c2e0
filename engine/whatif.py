"""What-if: one account's margin now and after hypothetical fills, transfers, price and vol moves.

Nothing is changed: the portfolio after the changes is a new ``Portfolio`` (fills applied as the
stream applies them, engine/fills.py), and both margins are computed on a private one-row book
(``MarginBook.scratch``: the same market, parameters, PSRs and valued instruments as the book it
comes from, sharing their valuation read-only). Price moves are relative per underlying (BTC
-10%: ``{"BTC": -0.10}``): the mark, the instruments' own marks and an asset of that name move
by the same factor; vol moves scale the underlying's vol surface and EWMA vol (``{"BTC": 0.20}``
is +20%). After a move, the account is valued on a market moved that way (its own scratch book).

The JSON form of the changes (``changes_from_mapping``): ``{"fills": [{"instrument", "qty"
(signed, + buys), "price", "fee"}], "transfers": [{"asset", "amount"}], "moves": {U: m},
"vol_moves": {U: v}}``, every key optional; a ``WhatIfError`` names the field at fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from engine.book import MarginBook
from engine.errors import EngineError
from engine.explain import Explanation, explain
from engine.fills import EPSILON, fill_outcome
from engine.instruments import Instrument, InstrumentError, InstrumentKind, InstrumentTable
from engine.margin import AccountMargin
from engine.market import MarketSnapshot, UnderlyingMarket, VolSurface
from engine.params import RiskParams
from engine.portfolio import Portfolio, Position
from engine.requirement import ShortfallCache
from engine.risk_arrays import MissingMarketData

SCRATCH = "\x00what-if"
"""The one row of a scratch book (no account id starts with a NUL)."""
T = TypeVar("T")
CHANGE_FIELDS = ("equity", "equity_mm", "equity_im", "im", "mm", "es99", "risk_requirement")
"""The figures whose change (after - before) a what-if reports."""


class WhatIfError(EngineError, ValueError):
    """A what-if that cannot be computed; ``field`` is the path of the value at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class TradeFill:
    """A hypothetical fill: signed quantity (+ buys) of an instrument at a price, fee paid."""

    instrument: str
    qty: float
    price: float
    fee: float = 0.0


@dataclass(frozen=True)
class Transfer:
    """A hypothetical transfer: a signed amount of an asset in (+) or out (-)."""

    asset: str
    amount: float


@dataclass(frozen=True)
class Changes:
    """Everything a what-if changes: fills, transfers, relative price and vol moves."""

    fills: tuple[TradeFill, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    moves: Mapping[str, float] = field(default_factory=dict)
    vol_moves: Mapping[str, float] = field(default_factory=dict)

    @property
    def moves_market(self) -> bool:
        """True when the market itself moves (a price or a vol move)."""
        return bool(self.moves) or bool(self.vol_moves)


@dataclass(frozen=True)
class WhatIfResult:
    """The account explained now and after the changes, and the change of its figures."""

    before: Explanation
    after: Explanation

    def change(self) -> dict[str, float]:
        """after - before of each figure of CHANGE_FIELDS."""
        b, a = self.before.margin, self.after.margin
        return {k: getattr(a, k) - getattr(b, k) for k in CHANGE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping: before, after (explained accounts) and the change."""
        change: dict[str, Any] = self.change()
        change["state"] = [self.before.margin.state, self.after.margin.state]
        return {"before": self.before.to_dict(), "after": self.after.to_dict(), "change": change}


# ----- the JSON form ----------------------------------------------------------------------


def _number(value: Any, path: str, positive: bool = False) -> float:
    """A finite number (positive if asked), or a WhatIfError naming the path."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WhatIfError(path, "must be a number")
    if not math.isfinite(value):
        raise WhatIfError(path, "must be finite")
    if positive and value <= 0:
        raise WhatIfError(path, "must be positive")
    return float(value)


def _text(value: Any, path: str) -> str:
    """A non-empty string, or a WhatIfError naming the path."""
    if not isinstance(value, str) or not value:
        raise WhatIfError(path, "must be a non-empty string")
    return value


def _items(data: Mapping[str, Any], key: str, kind: type) -> list[Any]:
    """data[key] as a list of objects (absent: empty), or a WhatIfError."""
    raw = data.get(key)
    raw = [] if raw is None else raw
    if not isinstance(raw, list) or not all(isinstance(x, Mapping) for x in raw):
        raise WhatIfError(key, f"must be a list of objects ({kind.__name__})")
    return raw


def _moves(data: Mapping[str, Any], key: str) -> dict[str, float]:
    """{underlying: relative move > -1}, or a WhatIfError."""
    raw = data.get(key)
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise WhatIfError(key, "must be an object of underlying: relative move")
    out = {}
    for name, value in raw.items():
        move = _number(value, f"{key}.{name}")
        if move <= -1.0:
            raise WhatIfError(f"{key}.{name}", "must be above -1 (-100%)")
        out[str(name)] = move
    return out


def changes_from_mapping(data: Any) -> Changes:
    """The changes from their JSON form (every key optional)."""
    if not isinstance(data, Mapping):
        raise WhatIfError("body", "must be a JSON object")
    unknown = sorted(set(data) - {"fills", "transfers", "moves", "vol_moves"})
    if unknown:
        raise WhatIfError(str(unknown[0]), "unknown field (fills, transfers, moves, vol_moves)")
    fills = tuple(
        TradeFill(
            _text(f.get("instrument"), f"fills[{i}].instrument"),
            _number(f.get("qty"), f"fills[{i}].qty"),
            _number(f.get("price"), f"fills[{i}].price", positive=True),
            _number(f.get("fee", 0.0), f"fills[{i}].fee"),
        )
        for i, f in enumerate(_items(data, "fills", TradeFill))
    )
    transfers = tuple(
        Transfer(
            _text(t.get("asset"), f"transfers[{i}].asset"),
            _number(t.get("amount"), f"transfers[{i}].amount"),
        )
        for i, t in enumerate(_items(data, "transfers", Transfer))
    )
    return Changes(fills, transfers, _moves(data, "moves"), _moves(data, "vol_moves"))


# ----- the portfolio and the market after the changes ---------------------------------------


def apply_changes(
    portfolio: Portfolio, changes: Changes, instruments: InstrumentTable, settlement: str
) -> Portfolio:
    """The portfolio after the fills and transfers (a new one; the given one is untouched)."""
    positions = {p.instrument: (p.qty, p.entry_price) for p in portfolio.positions}
    collateral = dict(portfolio.collateral)
    for i, fill in enumerate(changes.fills):
        inst = _instrument(instruments, fill.instrument, f"fills[{i}].instrument")
        old_qty, old_entry = positions.get(inst.name, (0.0, fill.price))
        out = fill_outcome(inst, old_qty, old_entry, fill.qty, fill.price, fill.fee, settlement)
        if out.qty != 0.0:
            positions[inst.name] = (out.qty, out.entry)
        elif inst.name in positions:
            del positions[inst.name]
        for asset, amount in out.cash.items():
            _add(collateral, asset, amount)
    for transfer in changes.transfers:
        _add(collateral, transfer.asset, transfer.amount)
    held = tuple(Position(name, q, e) for name, (q, e) in positions.items())
    return Portfolio(portfolio.account, collateral, held)


def _instrument(instruments: InstrumentTable, name: str, path: str) -> Instrument:
    """An instrument of the table (registered, else parsed from its name), or a WhatIfError."""
    try:
        return instruments.get(name)
    except InstrumentError as exc:
        raise WhatIfError(path, str(exc)) from None


def _add(collateral: dict[str, float], asset: str, amount: float) -> None:
    """Move a signed amount of an asset (a balance below EPSILON is dropped, as the stream does)."""
    if not amount:
        return
    balance = collateral.get(asset, 0.0) + amount
    if abs(balance) < EPSILON:
        collateral.pop(asset, None)
    else:
        collateral[asset] = balance


def moved_market(
    market: MarketSnapshot,
    moves: Mapping[str, float],
    vol_moves: Mapping[str, float],
    instruments: InstrumentTable,
) -> MarketSnapshot:
    """The market with each underlying's price moved by (1 + m) and its vols by (1 + v)."""
    unds = dict(market.underlyings)
    for path, table in (("moves", moves), ("vol_moves", vol_moves)):
        for name, move in table.items():
            if _number(move, f"{path}.{name}") <= -1.0:
                raise WhatIfError(f"{path}.{name}", "must be above -1 (-100%)")
            if name not in unds:
                raise WhatIfError(f"{path}.{name}", "no such underlying in the market")
    for name, und in market.underlyings.items():
        unds[name] = _moved(und, 1.0 + moves.get(name, 0.0), 1.0 + vol_moves.get(name, 0.0))
    marks = {
        n: p * (1.0 + moves.get(_underlying_of(instruments, n), 0.0))
        for n, p in market.marks.items()
    }
    assets = {
        a: replace(m, price=m.price * (1.0 + moves[a])) if a in moves else m
        for a, m in market.assets.items()
    }
    return MarketSnapshot(market.as_of, unds, assets, marks)


def _underlying_of(instruments: InstrumentTable, name: str) -> str:
    """The underlying of an instrument's own mark ("" when its name means nothing)."""
    try:
        return instruments.get(name).underlying
    except InstrumentError:
        return ""


def _moved(und: UnderlyingMarket, price: float, vol: float) -> UnderlyingMarket:
    """One underlying with its mark times `price` and its vols times `vol`."""
    if price == 1.0 and vol == 1.0:
        return und
    surface = und.vol_surface
    if surface is not None and vol != 1.0:
        surface = VolSurface(surface.expiries, surface.log_moneyness, surface.vols * vol)
    ewma = und.ewma_vol * vol if und.ewma_vol is not None else None
    return replace(und, mark=und.mark * price, ewma_vol=ewma, vol_surface=surface)


# ----- margins on a scratch book -----------------------------------------------------------


def load_row(book: MarginBook, portfolio: Portfolio) -> None:
    """Put the portfolio in a scratch book's one row (emptied first)."""
    book.clear_account(SCRATCH)
    try:
        book.prepare(p.instrument for p in portfolio.positions)
        book.load_portfolio(SCRATCH, portfolio.position_tuples(), portfolio.collateral)
    except (MissingMarketData, InstrumentError) as exc:
        raise WhatIfError("portfolio", str(exc)) from None


def margin_only(book: MarginBook, account: str) -> AccountMargin:
    """The scratch row's margin, named after the account (no explanation)."""
    return replace(book.margin([SCRATCH]).account(0), account=account)


def _change_to(book: MarginBook, now: Portfolio, after: Portfolio) -> None:
    """Take the scratch row from `now` to `after`: only the positions and balances that differ."""
    held = {p.instrument: (p.qty, p.entry_price) for p in now.positions}
    wanted = {p.instrument: (p.qty, p.entry_price) for p in after.positions}
    for asset in [*now.collateral, *(a for a in after.collateral if a not in now.collateral)]:
        balance = after.collateral.get(asset, 0.0)
        if now.collateral.get(asset, 0.0) != balance:
            book.set_collateral(SCRATCH, asset, balance)
    for name in [*held, *(n for n in wanted if n not in held)]:
        qty, entry = wanted.get(name, (0.0, 1.0))
        if held.get(name) != (qty, entry):
            book.set_position(SCRATCH, name, qty, entry)


class WhatIfBook:
    """What-ifs against one book's market: its scratch is built once per market, parameter set
    and instrument valuation of the book, and its joint draws once for good."""

    def __init__(self) -> None:
        self._shortfall = ShortfallCache()
        self._moved_shortfall = ShortfallCache()  # the joint draws of books on moved markets
        self._key: tuple[object, ...] = ()
        self._scratch: MarginBook | None = None

    def scratch(self, book: MarginBook) -> MarginBook:
        """The scratch of a book as it is now (rebuilt when its market or valuation changed)."""
        key = _layout_key(book)
        if (
            self._scratch is None
            or len(key) != len(self._key)
            or not all(a is b for a, b in zip(key, self._key, strict=True))
        ):
            self._scratch = book.scratch(self._shortfall)
            self._key = key
        return self._scratch

    def what_if(
        self, book: MarginBook, portfolio: Portfolio, changes: Changes, plan: bool = True
    ) -> WhatIfResult:
        """The portfolio explained on the book's market now and after the changes (``plan``:
        with the liquidation planner's reduction when short of IM)."""
        before, after = self.compare(
            book, portfolio, changes, lambda b, account: explain(b, SCRATCH, account, plan)
        )
        return WhatIfResult(before, after)

    def margins(
        self, book: MarginBook, portfolio: Portfolio, changes: Changes
    ) -> tuple[AccountMargin, AccountMargin]:
        """The portfolio's margin now and after the changes, without the explanation (what a
        pre-trade check needs)."""
        return self.compare(book, portfolio, changes, margin_only)

    def compare(
        self,
        book: MarginBook,
        portfolio: Portfolio,
        changes: Changes,
        show: Callable[[MarginBook, str], T],
    ) -> tuple[T, T]:
        """`show` of the scratch row holding the portfolio now, then after the changes."""
        scratch = self.scratch(book)
        settlement = book.params.settlement_currency
        check_priced(changes, scratch)
        after = apply_changes(portfolio, changes, scratch.instruments, settlement)
        load_row(scratch, portfolio)
        before = show(scratch, portfolio.account)
        if changes.moves_market:
            market = moved_market(
                book.market, changes.moves, changes.vol_moves, scratch.instruments
            )
            scratch = _fresh(book.params, market, scratch.instruments, book.psr_overrides)
            scratch.use_shortfall(self._moved_shortfall)
            load_row(scratch, after)
            return before, show(scratch, after.account)
        if after == portfolio:
            return before, before
        _change_to(scratch, portfolio, after)
        return before, show(scratch, after.account)


def check_priced(changes: Changes, book: MarginBook) -> None:
    """Every fill's numbers finite (its price positive), its instrument and every transfer's asset
    valued on the book's market."""
    market = book.market
    for i, fill in enumerate(changes.fills):
        _number(fill.qty, f"fills[{i}].qty")
        _number(fill.price, f"fills[{i}].price", positive=True)
        _number(fill.fee, f"fills[{i}].fee")
        path = f"fills[{i}].instrument"
        inst = _instrument(book.instruments, fill.instrument, path)
        und = market.underlyings.get(inst.underlying)
        if und is None:
            raise WhatIfError(path, f"no market data for {inst.underlying}")
        if inst.kind is InstrumentKind.OPTION and und.vol_surface is None:
            raise WhatIfError(path, f"no vol surface for {inst.underlying}")
    for i, transfer in enumerate(changes.transfers):
        try:
            book.price_of(transfer.asset)
        except MissingMarketData:
            raise WhatIfError(f"transfers[{i}].asset", f"no price for {transfer.asset}") from None


def _layout_key(book: MarginBook) -> tuple[object, ...]:
    """What a scratch copies from a book, compared by identity."""
    parts: list[object] = [book.market, book.params, len(book.instruments)]
    for b in book.underlyings.values():
        parts += [b, b.valuation, b.grid, len(b.gids)]
    return tuple(parts)


def _fresh(
    params: RiskParams,
    market: MarketSnapshot,
    instruments: InstrumentTable,
    psr: Mapping[str, float],
) -> MarginBook:
    """A new empty book on a market (its own copy of the instrument table)."""
    table = InstrumentTable(list(instruments.instruments), dict(instruments.index))
    return MarginBook(params, market, table, psr)


def what_if(
    portfolio: Portfolio,
    market: MarketSnapshot,
    params: RiskParams,
    changes: Changes,
    instruments: InstrumentTable | None = None,
) -> WhatIfResult:
    """One portfolio explained in one market now and after the changes (the Python API)."""
    book = _fresh(params, market, instruments or InstrumentTable(), {})
    return WhatIfBook().what_if(book, portfolio, changes)


__all__ = [
    "Changes",
    "TradeFill",
    "Transfer",
    "WhatIfBook",
    "WhatIfError",
    "WhatIfResult",
    "apply_changes",
    "changes_from_mapping",
    "moved_market",
    "what_if",
]
