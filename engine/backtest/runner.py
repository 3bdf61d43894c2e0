"""The backtest's run of one parameter set: margin the held portfolios at every step of a path
and measure what each loses over the liquidation horizon.

At each step the market moves to the path's (marks, EWMA vols, surfaces, depth), the dynamic PSR
follows the EWMA as the stream's does (rising at once, falling at most its daily bound), and one
``MarginBook`` (the stream's own book) revalues every held account in one vectorised pass and
margins them in another. A portfolio formed at step t keeps its own account until the horizon
after its last step is margined, so the loss of the portfolio held from t is its own equity at t
less its equity at the first step ``horizon_days`` later: options repriced on that step's
surface, coins at that step's price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.arrays import FloatArray, IntArray
from engine.backtest.errors import BacktestInputError
from engine.backtest.markets import implied_vols, params_ewma, snapshot
from engine.backtest.path import PricePath
from engine.backtest.portfolios import PortfolioSpec, gross_coins
from engine.book import MarginBook
from engine.dynamic import PsrTracker
from engine.instruments import InstrumentError
from engine.market import MarketSnapshot
from engine.params import RiskParams
from engine.risk_arrays import MissingMarketData
from engine.volatility import DAY_SECONDS


@dataclass(frozen=True)
class RunSeries:
    """One parameter set over a path: per step and portfolio [T, P] the MM and IM it asked of
    the portfolio held from that step, the loss that portfolio realised over the horizon (NaN
    where the horizon runs past the path) and its gross notional; per step and underlying
    [T, U] the effective PSR."""

    label: str
    params_version: str
    portfolios: tuple[str, ...]
    underlyings: tuple[str, ...]
    mm: FloatArray
    im: FloatArray
    loss: FloatArray
    notional: FloatArray
    psr: FloatArray


@dataclass
class Held:
    """A portfolio formed into a book account: which spec, which period, until which step its
    equity is needed."""

    spec: int
    period: int
    account: str
    last: int
    coins: FloatArray
    """Per underlying, the coins its gross notional stands for (``gross_coins``)."""


@dataclass
class Ledger:
    """What the run records as it goes."""

    steps: int
    specs: int
    periods: int
    equity: FloatArray = field(init=False)
    mm: FloatArray = field(init=False)
    im: FloatArray = field(init=False)
    notional: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        """Every figure unknown (NaN) until recorded."""
        self.equity = np.full((self.specs, self.periods, self.steps), np.nan)
        self.mm = np.full((self.steps, self.specs), np.nan)
        self.im = np.full_like(self.mm, np.nan)
        self.notional = np.full_like(self.mm, np.nan)


def periods_of(specs: list[PortfolioSpec], path: PricePath) -> IntArray:
    """[P, T] the formation period each portfolio is in at each step (0 all along when fixed)."""
    elapsed = (path.times - path.times[0]) / DAY_SECONDS
    rows = [
        np.floor(elapsed / s.roll_days + 1e-9) if s.roll_days else np.zeros(path.steps)
        for s in specs
    ]
    return np.asarray(rows, dtype=np.int64)


def last_steps(periods: IntArray, ahead: IntArray) -> IntArray:
    """[P, K] the last step at which a period's account is needed: its last step or the end of
    the horizon of any step in it, whichever is later."""
    steps = np.arange(periods.shape[1])
    need = np.maximum(steps, ahead)
    out = np.zeros((periods.shape[0], int(periods.max()) + 1), dtype=np.int64)
    for p in range(periods.shape[0]):
        np.maximum.at(out[p], periods[p], need)
    return out


def run_params(
    path: PricePath,
    specs: list[PortfolioSpec],
    params: RiskParams,
    label: str,
    horizon_days: float,
) -> RunSeries:
    """Margin the portfolios with one parameter set at every step and measure their losses."""
    ahead = path.index_after(horizon_days)
    periods = periods_of(specs, path)
    lasts = last_steps(periods, ahead)
    ewma, implied = params_ewma(path, params), implied_vols(path)
    ledger = Ledger(path.steps, len(specs), lasts.shape[1])
    psr = np.zeros_like(path.prices)
    tracker, book, held = PsrTracker(), None, list[Held]()
    for t in range(path.steps):
        market = snapshot(path, t, ewma[t], implied[t])
        psr[t] = [
            tracker.update(u, float(ewma[t, k]), float(path.times[t]), params)
            for k, u in enumerate(path.underlyings)
        ]
        book = advance(book, params, market, dict(zip(path.underlyings, psr[t], strict=True)))
        held = [h for h in held if h.last >= t]
        held.extend(form_new(book, specs, periods[:, t], lasts, held, path, t, implied[t]))
        record(book, held, periods[:, t], path.prices[t], ledger, t)
    loss = realised_loss(ledger.equity, periods, ahead)
    names = tuple(s.name for s in specs)
    version = f"{params.name}@{params.version}"
    return RunSeries(
        label, version, names, path.underlyings, ledger.mm, ledger.im, loss, ledger.notional, psr
    )


def advance(
    book: MarginBook | None, params: RiskParams, market: MarketSnapshot, psr: dict[str, float]
) -> MarginBook:
    """The book moved to a step's market and effective PSRs (revalued once)."""
    if book is None:
        return MarginBook(params, market, psr_overrides=psr)
    for name, value in psr.items():
        if book.psr_overrides.get(name) != value:
            book.psr_overrides[name] = value
            book.underlyings[name].set_psr(value, params)
    book.update_market(market)
    return book


def form_new(
    book: MarginBook,
    specs: list[PortfolioSpec],
    periods: IntArray,
    lasts: IntArray,
    held: list[Held],
    path: PricePath,
    t: int,
    implied: FloatArray,
) -> list[Held]:
    """The portfolios whose period starts at this step, loaded into the book."""
    have = {(h.spec, h.period) for h in held}
    spots = path.spots(t)
    vols = dict(zip(path.underlyings, implied.tolist(), strict=True))
    new = []
    for p, spec in enumerate(specs):
        k = int(periods[p])
        if (p, k) in have:
            continue
        account = f"{spec.name}#{k}"
        portfolio = spec.formed(account, spots, vols, float(path.times[t]))
        try:
            book.load_portfolio(account, portfolio.position_tuples(), portfolio.collateral)
        except (MissingMarketData, InstrumentError, KeyError) as exc:
            raise BacktestInputError(f"portfolio {spec.name}: {exc}") from None
        coins = gross_coins(portfolio, path.underlyings)
        vector = np.array([coins[u] for u in path.underlyings])
        new.append(Held(p, k, account, int(lasts[p, k]), vector))
    return new


def record(
    book: MarginBook,
    held: list[Held],
    periods: IntArray,
    prices: FloatArray,
    ledger: Ledger,
    t: int,
) -> None:
    """Margin every held account in one pass; keep each one's equity, and the MM, IM and gross
    notional of the portfolios held from this step."""
    rows = np.array([book.account_index[h.account] for h in held], dtype=np.int64)
    report = book.margin_rows(rows)
    spec = np.array([h.spec for h in held], dtype=np.int64)
    period = np.array([h.period for h in held], dtype=np.int64)
    ledger.equity[spec, period, t] = report.equity
    now = period == periods[spec]
    ledger.mm[t, spec[now]] = report.mm[now]
    ledger.im[t, spec[now]] = report.im[now]
    coins = np.array([h.coins for h in held])
    ledger.notional[t, spec[now]] = (coins @ prices)[now]


def realised_loss(equity: FloatArray, periods: IntArray, ahead: IntArray) -> FloatArray:
    """[T, P] each step's portfolio's equity then less its equity a horizon later (NaN past the
    path's end): the loss it realised held over the horizon."""
    specs, _, steps = equity.shape
    p = np.arange(specs)[:, None]
    t = np.arange(steps)[None, :]
    later = np.where(ahead >= 0, ahead, 0)[None, :]
    loss = equity[p, periods, t] - equity[p, periods, later]
    return np.asarray(np.where(ahead[None, :] >= 0, loss, np.nan).T)
