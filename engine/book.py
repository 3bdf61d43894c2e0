"""The book of many accounts, vectorised (section 4): sparse positions, scenario vectors, margin.

Per underlying u the book keeps a sparse accounts x instruments exposure matrix Q_u and, per
account, the scenario PnL vector P_u (plus net delta, position value, basis-bucket and
short-option nets). A market move on u recomputes u's risk arrays once and every account's vector
with one sparse product Q_u @ R_u; a fill changes one account's vectors by dq x R_i. The margin of
any set of accounts is then computed from these vectors alone, in one vectorised pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from engine.account_margin import margin_of_row
from engine.arrays import FloatArray
from engine.book_state import UnderlyingBook
from engine.derive.accounts import derive_report
from engine.instruments import Instrument, InstrumentError, InstrumentKind, InstrumentTable
from engine.margin import MarginReport
from engine.market import MarketSnapshot, UnderlyingMarket
from engine.params import MarginModel, RiskParams
from engine.requirement import (
    RequirementInputs,
    ShortfallCache,
    compute_requirement,
    shortfall_of,
)
from engine.risk_arrays import MissingMarketData


@dataclass
class AccountPositions:
    """One account's positions (instrument index -> (qty, entry)) and, per underlying, its net
    option units per (expiry, strike) bucket."""

    positions: dict[int, tuple[float, float]] = field(default_factory=dict)
    option_nets: dict[str, dict[int, float]] = field(default_factory=dict)


EXACT_BUCKETS = 16
"""Option buckets of an account on one underlying up to which its short units are summed again on
every option fill (exact); beyond, they are updated by the changed bucket alone (O(1))."""


class MarginBook:
    """Many accounts' portfolios and their margin, kept current incrementally."""

    def __init__(
        self,
        params: RiskParams,
        market: MarketSnapshot,
        instruments: InstrumentTable | None = None,
        psr_overrides: Mapping[str, float] | None = None,
    ) -> None:
        self.params = params
        self.market = market
        self.instruments = instruments if instruments is not None else InstrumentTable()
        self.psr_overrides = dict(psr_overrides or {})
        self.accounts: list[str] = []
        self.account_index: dict[str, int] = {}
        self.holdings: list[AccountPositions] = []
        self.assets: list[str] = []
        self.asset_index: dict[str, int] = {}
        self.capacity = 16
        self.cost = np.zeros(self.capacity)
        self.collateral = np.zeros((self.capacity, 0))
        self.underlyings: dict[str, UnderlyingBook] = {}
        self._shortfall = ShortfallCache()
        for name in sorted(market.underlyings):
            self._add_underlying(name)

    def scratch(self, shortfall: ShortfallCache | None = None) -> MarginBook:
        """An empty book for what-ifs on the same market, parameters, PSRs and valued
        instruments (shared read-only), with its own instrument table, rows and vectors: nothing
        done to it reaches this book. ``shortfall`` keeps the joint draws across scratches."""
        copy = MarginBook.__new__(MarginBook)
        copy.params, copy.market = self.params, self.market
        copy.instruments = InstrumentTable(
            list(self.instruments.instruments), dict(self.instruments.index)
        )
        copy.psr_overrides = dict(self.psr_overrides)
        copy.accounts, copy.account_index, copy.holdings = [], {}, []
        copy.assets, copy.asset_index = [], {}
        copy.capacity = 1
        copy.cost = np.zeros(1)
        copy.collateral = np.zeros((1, 0))
        copy.underlyings = {n: b.layout_copy(1) for n, b in self.underlyings.items()}
        copy._shortfall = shortfall if shortfall is not None else ShortfallCache()
        return copy

    def use_shortfall(self, cache: ShortfallCache) -> None:
        """Share a cache of joint draws (kept across books of the same parameters)."""
        self._shortfall = cache

    def clear_account(self, account: str) -> None:
        """Empty an account exactly: no position, no balance, cost and vectors zero (no float
        residue of the changes that emptied it)."""
        row = self.account_row(account)
        self.holdings[row] = AccountPositions()
        self.cost[row] = 0.0
        self.collateral[row] = 0.0
        for book in self.underlyings.values():
            book.reset_row(row, 0.0)

    # ----- accounts and assets -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.accounts)

    def __contains__(self, account: object) -> bool:
        return account in self.account_index

    def account_row(self, account: str) -> int:
        """Row of an account, adding it (empty) when new."""
        row = self.account_index.get(account)
        if row is not None:
            return row
        row = len(self.accounts)
        if row >= self.capacity:
            self._grow(max(2 * self.capacity, row + 1))
        self.accounts.append(account)
        self.account_index[account] = row
        self.holdings.append(AccountPositions())
        return row

    def _grow(self, capacity: int) -> None:
        """Grow every per-account array to a new capacity."""
        extra = capacity - self.capacity
        self.cost = np.concatenate([self.cost, np.zeros(extra)])
        self.collateral = np.vstack([self.collateral, np.zeros((extra, len(self.assets)))])
        for book in self.underlyings.values():
            book.grow(capacity)
        self.capacity = capacity

    def asset_column(self, asset: str) -> int:
        """Column of a collateral asset, adding it when new (its price must be known)."""
        col = self.asset_index.get(asset)
        if col is not None:
            return col
        self.price_of(asset)
        col = len(self.assets)
        self.assets.append(asset)
        self.asset_index[asset] = col
        self.collateral = np.hstack([self.collateral, np.zeros((self.capacity, 1))])
        return col

    def price_of(self, asset: str) -> float:
        """USD price of an asset (the settlement currency is worth 1 unless priced)."""
        if asset == self.params.settlement_currency and asset not in self.market.assets:
            return 1.0
        try:
            return float(self.market.price_of_asset(asset))
        except KeyError:
            raise MissingMarketData(f"asset {asset}: no price in the market data") from None

    def asset_prices(self) -> FloatArray:
        """USD price of every collateral asset, in column order."""
        return np.array([self.price_of(a) for a in self.assets], dtype=np.float64)

    def collateral_value(self, rows: np.ndarray) -> FloatArray:
        """USD value of each row's collateral balances (borrowing counts negative)."""
        return np.asarray(self.collateral[rows, : len(self.assets)] @ self.asset_prices())

    # ----- underlyings -----------------------------------------------------------------------

    def _add_underlying(self, name: str) -> UnderlyingBook:
        """Track a new underlying (it must be in the market)."""
        book = UnderlyingBook(name, self.capacity, self.params, self.psr_overrides.get(name))
        self.underlyings = dict(sorted({**self.underlyings, name: book}.items()))
        book.revalue_instruments(self.instruments, self.market)
        return book

    def underlying_book(self, name: str) -> UnderlyingBook:
        """The book of an underlying, which must have market data."""
        book = self.underlyings.get(name)
        if book is not None:
            return book
        if name not in self.market.underlyings:
            raise MissingMarketData(f"underlying {name}: no market data (mark price)")
        return self._add_underlying(name)

    def instrument(self, name: str) -> Instrument:
        """Reference data of an instrument (registered or parsed)."""
        return self.instruments.get(name)

    # ----- portfolio changes ------------------------------------------------------------------

    def set_position(self, account: str, instrument: str, qty: float, entry: float) -> None:
        """Replace an account's position in an instrument (qty signed; inverse qty in USD)."""
        gid = self.instruments.resolve(instrument)
        inst = self.instruments.instruments[gid]
        if inst.kind is InstrumentKind.SPOT:
            raise InstrumentError(f"{instrument}: spot holdings are collateral, not positions")
        if qty != 0.0 and not entry > 0.0:
            raise ValueError(f"{instrument}: entry price must be positive")
        book = self.underlying_book(inst.underlying)
        row = self.account_row(account)
        local = book.ensure_instrument(gid, self.instruments, self.market)
        held = self.holdings[row]
        old_qty, old_entry = held.positions.get(gid, (0.0, entry))
        d_exposure = exposure_units(inst, qty, entry) - exposure_units(inst, old_qty, old_entry)
        self.cost[row] += cost_basis(inst, qty, entry) - cost_basis(inst, old_qty, old_entry)
        if qty == 0.0:
            held.positions.pop(gid, None)
        else:
            held.positions[gid] = (qty, entry)
        book.apply_exposure(row, local, d_exposure)
        if inst.kind is InstrumentKind.OPTION:
            self._update_option_nets(row, book, local, qty - old_qty, inst.contract_size)
        if qty == 0.0 and not self._holds_on(row, inst.underlying):
            book.reset_row(row, self._coin(row, inst.underlying))

    def _holds_on(self, row: int, underlying: str) -> bool:
        """True while the account has a position on the underlying."""
        table = self.instruments.instruments
        return any(table[g].underlying == underlying for g in self.holdings[row].positions)

    def _coin(self, row: int, asset: str) -> float:
        """The account's balance of an asset (0 when the book has no column for it)."""
        col = self.asset_index.get(asset)
        return 0.0 if col is None else float(self.collateral[row, col])

    def _update_option_nets(
        self, row: int, book: UnderlyingBook, local: int, d_qty: float, size: float
    ) -> None:
        """Keep the account's net per (expiry, strike) and its short units on the underlying.

        The short units are summed again over the underlying's buckets while there are a few
        (EXACT_BUCKETS); beyond, a book of many strikes (a market maker's) takes the bucket's
        change alone, so a fill costs the same whatever the book's size.
        """
        nets = self.holdings[row].option_nets.setdefault(book.name, {})
        bucket = int(book.option_bucket[local])
        old = nets.get(bucket, 0.0)
        net = old + d_qty * size
        if abs(net) < 1e-12:
            nets.pop(bucket, None)
            net = 0.0
        else:
            nets[bucket] = net
        if len(nets) <= EXACT_BUCKETS:
            book.short_units[row] = sum(max(-v, 0.0) for v in nets.values())
        else:
            book.short_units[row] += max(-net, 0.0) - max(-old, 0.0)

    def set_collateral(self, account: str, asset: str, balance: float) -> None:
        """Replace an account's balance of a collateral asset (negative: borrowed)."""
        row = self.account_row(account)
        col = self.asset_column(asset)
        change = balance - self.collateral[row, col]
        self.collateral[row, col] = balance
        book = self.underlyings.get(asset)
        if book is None:
            return
        if balance == 0.0 and not self._holds_on(row, asset):
            book.reset_row(row, 0.0)
        else:
            book.apply_coin(row, change)

    def load_portfolio(
        self,
        account: str,
        positions: Iterable[tuple[str, float, float]],
        collateral: Mapping[str, float],
    ) -> None:
        """Replace an account's whole portfolio."""
        row = self.account_row(account)
        for gid in list(self.holdings[row].positions):
            self.set_position(account, self.instruments.instruments[gid].name, 0.0, 0.0)
        for asset in self.assets:
            if asset not in collateral and self.collateral[row, self.asset_index[asset]] != 0.0:
                self.set_collateral(account, asset, 0.0)
        for asset, balance in collateral.items():
            self.set_collateral(account, asset, balance)
        for name, qty, entry in positions:
            self.set_position(account, name, qty, entry)

    def prepare(self, instruments: Iterable[str]) -> None:
        """Value instruments about to be held (a portfolio about to be loaded) in one pass per
        underlying, not one pass per new instrument."""
        by_underlying: dict[str, list[int]] = {}
        for name in instruments:
            gid = self.instruments.resolve(name)
            inst = self.instruments.instruments[gid]
            if inst.kind is not InstrumentKind.SPOT:
                by_underlying.setdefault(inst.underlying, []).append(gid)
        for name, gids in by_underlying.items():
            self.underlying_book(name).ensure_instruments(gids, self.instruments, self.market)

    def has_positions(self, rows: np.ndarray) -> np.ndarray:
        """True per row while any derivative position is open."""
        return np.array([bool(self.holdings[int(r)].positions) for r in rows], dtype=bool)

    # ----- market -----------------------------------------------------------------------------

    def update_market(self, market: MarketSnapshot, changed: Iterable[str] | None = None) -> None:
        """Take a new market snapshot and revalue the underlyings that changed (all if None)."""
        self.market = market
        names = list(market.underlyings) if changed is None else list(changed)
        for name in names:
            if name not in market.underlyings:
                continue
            if name not in self.underlyings:
                self._add_underlying(name)
            self.underlyings[name].revalue(self.instruments, market, self.coin_column(name))

    def update_underlying(self, name: str, market: UnderlyingMarket) -> None:
        """Replace one underlying's market data and revalue its accounts."""
        self.update_market(self.market.with_underlying(name, market), [name])

    def set_psr(self, underlying: str, psr: float) -> None:
        """Set an underlying's effective PSR (dynamic margin) and revalue it."""
        self.psr_overrides[underlying] = psr
        book = self.underlying_book(underlying)
        book.set_psr(psr, self.params)
        book.revalue(self.instruments, self.market, self.coin_column(underlying))

    def set_params(self, params: RiskParams) -> None:
        """Apply a new risk-parameter set: every grid and vector is rebuilt."""
        self.params = params
        for name, book in self.underlyings.items():
            book.set_psr(self.psr_overrides.get(name), params)
            book.revalue(self.instruments, self.market, self.coin_column(name))

    def coin_column(self, underlying: str) -> FloatArray | None:
        """The accounts' balances of an underlying's coin, or None when nobody holds it."""
        col = self.asset_index.get(underlying)
        return None if col is None else self.collateral[:, col]

    # ----- margin -----------------------------------------------------------------------------

    def margin(self, accounts: Sequence[str] | None = None) -> MarginReport:
        """The margin of some accounts (all when None), from the current vectors."""
        if accounts is None:
            rows = np.arange(len(self.accounts))
        else:
            rows = np.array([self.account_index[a] for a in accounts], dtype=np.int64)
        return self.margin_rows(rows)

    def shortfall(self, accounts: Sequence[str] | None = None) -> tuple[FloatArray, FloatArray]:
        """ES_99 and VaR_99 alone for some accounts (all when None)."""
        rows = (
            np.arange(len(self.accounts))
            if accounts is None
            else np.array([self.account_index[a] for a in accounts], dtype=np.int64)
        )
        return shortfall_of(self._inputs(rows), self.params, self._shortfall)

    def margin_rows(self, rows: np.ndarray) -> MarginReport:
        """The margin of accounts given by row (one row: the one-account path, same figures);
        under a set selecting Derive's PMRM_2, that model's (engine/derive/accounts.py)."""
        if self.params.model is MarginModel.DERIVE_PMRM2:
            return derive_report(self, rows)
        if rows.size == 1:
            return margin_of_row(self, int(rows[0]), self._shortfall)
        return compute_requirement(self._inputs(rows), self.params, self._shortfall)

    def margin_batch(self, rows: np.ndarray) -> MarginReport:
        """The margin of rows through the batch path whatever their number (tests compare it
        with the one-account path)."""
        if self.params.model is MarginModel.DERIVE_PMRM2:
            return derive_report(self, rows)
        return compute_requirement(self._inputs(rows), self.params, self._shortfall)

    def _inputs(self, rows: np.ndarray) -> RequirementInputs:
        """Gather what the requirement needs for some rows."""
        books = list(self.underlyings.values())
        prices = self.asset_prices()
        return RequirementInputs(
            accounts=[self.accounts[int(r)] for r in rows],
            underlyings=[b.name for b in books],
            books=books,
            rows=rows,
            market=self.market,
            cost=self.cost[rows],
            assets=list(self.assets),
            asset_prices=prices,
            collateral=self.collateral[rows],
            has_positions=self.has_positions(rows),
        )


def exposure_units(inst: Instrument, qty: float, entry: float) -> float:
    """Exposure units: contracts, or coins (qty / entry) for inverse contracts."""
    if qty == 0.0:
        return 0.0
    return qty / entry if inst.inverse else qty


def cost_basis(inst: Instrument, qty: float, entry: float) -> float:
    """Cost basis: qty x size x entry (linear), qty (inverse USD notional), 0 (options)."""
    if qty == 0.0 or inst.kind is InstrumentKind.OPTION:
        return 0.0
    return qty if inst.inverse else qty * inst.contract_size * entry


def sparse_matrix(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A CSR matrix summing duplicate entries."""
    return sp.csr_matrix((vals, (rows, cols)), shape=shape)
