"""Derive's PMRM_2 on the stream's accounts: each account of the book as PMRM_2 portfolios, and
their margin as the book's ``MarginReport`` (what a worker whose risk-params set selects
``derive-pmrm2`` publishes).

PMRM_2 margins one underlying per manager, so an account is split as Derive would hold it: a
portfolio per underlying it trades (its options; its perpetuals, futures and inverse contracts
as one perpetual position at their weighted mark; its own coin as risk-cancelling collateral
when the parameters say so), and one for the rest of its collateral (the settlement currency,
stablecoins without a Derive haircut and any borrowing as cash; other coins as collateral). The
market has no rate feed and no oracle confidences: rates are 0 and confidences 1. The margins
of the portfolios add up; IM and MM are reported as requirements against the account's equity
(equity - Derive's margin), so that E - IM and E - MM are Derive's IM and MM margins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.arrays import YEAR_SECONDS, FloatArray
from engine.derive.model import Pmrm2Margin, margin
from engine.derive.params import Pmrm2Params
from engine.derive.portfolio import Collateral, OptionFeed, OptionHolding, Portfolio
from engine.instruments import Instrument, InstrumentKind, InstrumentTable
from engine.margin import CollateralComponents, MarginReport, UnderlyingComponents
from engine.market import MarketSnapshot, UnderlyingMarket
from engine.params import RiskParams
from engine.risk_arrays import MissingMarketData
from engine.states import classify, ratio_mm

RESIDUAL = ""
"""Key of an account's portfolio of collateral and cash alone."""


class Holding(Protocol):
    """One account's positions: instrument index -> (qty, entry)."""

    @property
    def positions(self) -> Mapping[int, tuple[float, float]]:
        """The open positions."""


class DeriveBookView(Protocol):
    """The parts of the book this module reads (``engine.book.MarginBook`` has them)."""

    @property
    def params(self) -> RiskParams:
        """The risk parameters in force (``derive`` set)."""

    @property
    def market(self) -> MarketSnapshot:
        """The market snapshot."""

    @property
    def accounts(self) -> Sequence[str]:
        """Account ids, by row."""

    @property
    def assets(self) -> Sequence[str]:
        """Collateral assets, by column."""

    @property
    def instruments(self) -> InstrumentTable:
        """Reference data of the instruments."""

    @property
    def holdings(self) -> Sequence[Holding]:
        """Each row's positions."""

    @property
    def collateral(self) -> FloatArray:
        """Collateral balances [rows, assets]."""

    @property
    def underlyings(self) -> Mapping[str, object]:
        """The underlyings the book tracks, in report order."""

    def asset_prices(self) -> FloatArray:
        """USD price of every asset, in column order."""


@dataclass
class _Linear:
    """An underlying's linear contracts summed: position (coins), notional at mark, and P&L."""

    position: float = 0.0
    notional: float = 0.0
    pnl: float = 0.0

    def add(self, inst: Instrument, qty: float, entry: float, mark: float) -> None:
        """Add one perpetual, future or inverse contract (valued as the engine values it)."""
        exposure = qty / entry if inst.inverse else qty
        units = exposure * (1.0 if inst.inverse else inst.contract_size)
        cost = qty if inst.inverse else qty * inst.contract_size * entry
        self.position += units
        self.notional += units * mark
        self.pnl += units * mark - cost


def _years(expiry: float | None, as_of: float) -> float:
    """Years to an expiry (0 for none or a passed one)."""
    return 0.0 if expiry is None else max(expiry - as_of, 0.0) / YEAR_SECONDS


def _option(inst: Instrument, qty: float, und: UnderlyingMarket, as_of: float) -> OptionHolding:
    """An option position with its vol from the underlying's surface."""
    if und.vol_surface is None or inst.strike is None or inst.expiry is None:
        raise MissingMarketData(f"underlying {inst.underlying}: options need a vol_surface")
    t = _years(inst.expiry, as_of)
    k = float(np.log(inst.strike / float(und.forward(t))))
    return OptionHolding(
        expiry_s=round(inst.expiry - as_of),
        strike=inst.strike,
        is_call=inst.is_call,
        vol=float(und.vol_surface.vol(t, k)),
        amount=qty * inst.contract_size,
    )


def _feeds(options: list[OptionHolding], und: UnderlyingMarket) -> list[OptionFeed]:
    """One feed per expiry: the forward, rate 0, full confidence."""
    expiries = sorted({o.expiry_s for o in options})
    return [
        OptionFeed(
            expiry_s=e,
            forward=float(und.forward(max(e, 0) / YEAR_SECONDS)),
            forward_confidence=1.0,
            rate=0.0,
            rate_confidence=1.0,
            vol_confidence=1.0,
        )
        for e in expiries
    ]


def _portfolio(
    options: list[OptionHolding],
    feeds: list[OptionFeed],
    linear: _Linear,
    collaterals: list[Collateral],
    spot: float,
    cash: float = 0.0,
) -> Portfolio:
    """A PMRM_2 portfolio in the stable (USD at 1), every confidence 1."""
    price = linear.notional / linear.position if linear.position else spot
    return Portfolio(
        cash=cash,
        collaterals=collaterals,
        spot_price=spot,
        spot_confidence=1.0,
        perp_position=linear.position,
        perp_price=price,
        perp_confidence=1.0,
        perp_pnl=linear.pnl,
        perp_funding=0.0,
        stable_price=1.0,
        options=options,
        feeds=feeds,
    )


def _collateral(
    asset: str, amount: float, price: float, derive: Pmrm2Params, cancelling: bool
) -> Collateral:
    """A coin as PMRM_2 collateral with its spec's haircuts (cancelling its underlying's risk
    only in that underlying's own portfolio)."""
    spec = derive.collateral_spec(asset)
    return Collateral(
        name=asset,
        amount=amount,
        price=price,
        confidence=1.0,
        risk_cancelling=cancelling and spec.risk_cancelling,
        im_haircut=spec.im_haircut,
        mm_haircut=spec.mm_haircut,
    )


def _trades(book: DeriveBookView, row: int) -> dict[str, list[tuple[Instrument, float, float]]]:
    """The row's positions by underlying."""
    out: dict[str, list[tuple[Instrument, float, float]]] = {}
    for gid, (qty, entry) in book.holdings[row].positions.items():
        inst = book.instruments.instruments[gid]
        out.setdefault(inst.underlying, []).append((inst, qty, entry))
    return out


def _underlying_portfolio(
    book: DeriveBookView, name: str, trades: list[tuple[Instrument, float, float]], coin: float
) -> Portfolio:
    """The portfolio of one underlying: its options, its linear contracts, its own coin."""
    market, derive = book.market, _derive(book.params)
    und = market.underlyings[name]
    options: list[OptionHolding] = []
    linear = _Linear()
    for inst, qty, entry in trades:
        if inst.kind is InstrumentKind.OPTION:
            options.append(_option(inst, qty, und, market.as_of))
        else:
            mark = market.marks.get(
                inst.name, float(und.forward(_years(inst.expiry, market.as_of)))
            )
            linear.add(inst, qty, entry, mark)
    coins = [_collateral(name, coin, und.mark, derive, True)] if coin > 0 else []
    return _portfolio(options, _feeds(options, und), linear, coins, und.mark)


def _is_cash(asset: str, params: RiskParams) -> bool:
    """The settlement currency, and stablecoins Derive's parameters give no haircut for."""
    derive = _derive(params)
    return asset == params.settlement_currency or (
        asset in params.stablecoins and asset not in derive.collateral
    )


def account_portfolios(book: DeriveBookView, row: int) -> dict[str, Portfolio]:
    """An account as PMRM_2 portfolios: one per underlying it trades or holds as a cancelling
    coin, and RESIDUAL for its other collateral and cash."""
    params, trades = book.params, _trades(book, row)
    derive = _derive(params)
    balances, prices = book.collateral[row, : len(book.assets)], book.asset_prices()
    held = dict(zip(book.assets, zip(balances, prices, strict=True), strict=True))
    cancelling = {
        a
        for a, (bal, _) in held.items()
        if bal > 0 and a in book.market.underlyings and derive.collateral_spec(a).risk_cancelling
    }
    out = {
        u: _underlying_portfolio(book, u, trades.get(u, []), held.get(u, (0.0, 0.0))[0])
        for u in sorted(set(trades) | cancelling)
    }
    cash = sum(b * p for a, (b, p) in held.items() if b < 0 or _is_cash(a, params))
    coins = [
        _collateral(a, b, p, derive, False)
        for a, (b, p) in held.items()
        if b > 0 and not _is_cash(a, params) and a not in out
    ]
    out[RESIDUAL] = _portfolio([], [], _Linear(), coins, 1.0, cash=float(cash))
    return out


def _derive(params: RiskParams) -> Pmrm2Params:
    """The Derive parameters of a set (a set selecting the model always has them)."""
    if params.derive is None:
        raise ValueError(f"risk-params {params.name}@{params.version}: no Derive parameters")
    return params.derive


@dataclass(frozen=True)
class AccountFigures:
    """One account's PMRM_2 margins (summed over its portfolios) and each portfolio's result."""

    im_margin: float
    mm_margin: float
    mtm: float
    by_portfolio: dict[str, Pmrm2Margin]


def account_figures(book: DeriveBookView, row: int) -> AccountFigures:
    """The PMRM_2 margins of one row of the book."""
    derive = _derive(book.params)
    results = {k: margin(p, derive) for k, p in account_portfolios(book, row).items()}
    return AccountFigures(
        im_margin=sum(r.im for r in results.values()),
        mm_margin=sum(r.mm for r in results.values()),
        mtm=sum(r.portfolio_mtm for r in results.values()),
        by_portfolio=results,
    )


def derive_report(book: DeriveBookView, rows: np.ndarray) -> MarginReport:
    """The book's margin report of some rows under PMRM_2 (see the module's docstring)."""
    figures = [account_figures(book, int(r)) for r in rows]
    names = list(book.underlyings)
    equity = np.array([f.mtm for f in figures], dtype=np.float64)
    im = equity - np.array([f.im_margin for f in figures], dtype=np.float64)
    mm = equity - np.array([f.mm_margin for f in figures], dtype=np.float64)
    positions = np.array([bool(book.holdings[int(r)].positions) for r in rows], dtype=bool)
    zeros = np.zeros(len(rows))
    return MarginReport(
        accounts=[book.accounts[int(r)] for r in rows],
        underlyings=names,
        assets=list(book.assets),
        equity=equity,
        equity_mm=equity,
        equity_im=equity,
        im=im,
        mm=mm,
        ratio_mm=ratio_mm(equity, mm),
        state=classify(equity, equity, equity, im, mm, positions),
        directional_total=zeros,
        scenario_requirement=im,
        es99=zeros,
        var99=zeros,
        risk_requirement=im,
        liquidity_addon=zeros,
        per_underlying=_components(figures, names),
        collateral=_no_haircuts(book, rows),
        params_version=f"{book.params.name}@{book.params.version}",
    )


def _components(figures: list[AccountFigures], names: list[str]) -> UnderlyingComponents:
    """Per account and underlying: the worst loss and the MM contingencies of its portfolio."""
    worst, charges = np.zeros((len(figures), len(names))), np.zeros((len(figures), len(names)))
    for i, fig in enumerate(figures):
        for k, name in enumerate(names):
            result = fig.by_portfolio.get(name)
            if result is not None:
                worst[i, k] = max(0.0, -result.worst_loss)
                charges[i, k] = result.contingencies.mm
    zero = np.zeros_like(worst)
    return UnderlyingComponents(
        worst_loss=worst,
        directional=zero,
        two_sided=zero,
        contingencies=charges,
        short_option=zero,
        delta=zero,
        basis=zero,
        liquidity_addon=zero,
        delta_notional=zero,
    )


def _no_haircuts(book: DeriveBookView, rows: np.ndarray) -> CollateralComponents:
    """Balances and prices; haircuts are inside PMRM_2's contingencies, not deducted here."""
    balances = book.collateral[rows, : len(book.assets)]
    zero = np.zeros_like(balances)
    return CollateralComponents(
        balance=balances,
        price=book.asset_prices(),
        rate_mm=zero,
        rate_im=zero,
        deduction_mm=zero,
        deduction_im=zero,
    )
