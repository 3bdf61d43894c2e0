"""The margin of one account of the book, for the one-fill path (a fill, a transfer, a what-if).

A fill or a transfer changes one account, and its status needs that account's margin at once. The
batch path (engine/requirement.py) is built for many rows: on a single row nearly all of its
~270 µs went to numpy's fixed cost per call on arrays of length 1 (about 200 calls). This path
computes the same figures for one row with Python floats and keeps numpy for the real vectors (a
held underlying's scenario PnL, the expected shortfall's 2,000 joint draws). What depends only on
the market, the parameters and the book's layout (ES interpolation points, correlations, marks,
depth curves, asset classes and prices) is prepared once per market snapshot (``_Context``).

Two shortcuts keep the figures: an underlying whose scenario PnL row is all zero (nothing held
there) adds 0 to the worst losses and to every joint draw, so its scenario part is skipped; and the
ES interpolates the account's ES-grid PnL at each draw from the two grid points around it (the
sparse form of the [U*G, M] weight matrix the batch path multiplies by: the same sums, in another
order). The figures equal the batch path's up to rounding (tests/engine/test_book.py checks both
on random books).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.arrays import FloatArray, IntArray
from engine.book_state import UnderlyingBook
from engine.haircuts import asset_class_of
from engine.margin import (
    UNDERLYING_FIELDS,
    CollateralComponents,
    MarginReport,
    UnderlyingComponents,
)
from engine.market import DepthCurve, MarketSnapshot
from engine.params import AssetClass, RiskParams
from engine.requirement import ShortfallCache
from engine.scenarios import ScenarioGrid
from engine.slippage import BPS, SlippageCurve
from engine.states import STATE_CODES, AccountState
from engine.volatility import floored_vol

_FIELD = {name: i for i, name in enumerate(UNDERLYING_FIELDS)}
_DIRECTIONAL = _FIELD["directional"]
_TWO_SIDED = _FIELD["two_sided"]
_CONTINGENCIES = _FIELD["contingencies"]
_LIQUIDITY = _FIELD["liquidity_addon"]
_VALUE = len(UNDERLYING_FIELDS)  # after the components: the position value, then the held flag
_ZERO = (0.0,) * len(UNDERLYING_FIELDS)
_TAIL_PAD = np.zeros(1)  # a step after the last ES grid point (read only by a one-point grid)
_HEALTHY = STATE_CODES[AccountState.HEALTHY]
_MARGIN_CALL = STATE_CODES[AccountState.MARGIN_CALL]
_LIQUIDATION = STATE_CODES[AccountState.LIQUIDATION]
_BANKRUPT = STATE_CODES[AccountState.BANKRUPT]


class BookView(Protocol):
    """The parts of a book the one-account margin reads (``engine.book.MarginBook`` has them),
    declared here so that this module depends on no book: the book calls it, never the reverse."""

    @property
    def params(self) -> RiskParams:
        """The risk parameters in force."""

    @property
    def market(self) -> MarketSnapshot:
        """The market snapshot the vectors were valued against."""

    @property
    def accounts(self) -> Sequence[str]:
        """Account ids, by row."""

    @property
    def assets(self) -> Sequence[str]:
        """Collateral assets, by column."""

    @property
    def underlyings(self) -> Mapping[str, UnderlyingBook]:
        """Each underlying's vectors, in the book's order."""

    @property
    def cost(self) -> FloatArray:
        """Cost basis per row."""

    @property
    def collateral(self) -> FloatArray:
        """Collateral balances [rows, columns] (columns beyond ``assets`` unused)."""

    def asset_prices(self) -> FloatArray:
        """USD price of every collateral asset, in column order."""


@dataclass(frozen=True)
class _Underlying:
    """What one underlying's part needs besides the account's vectors."""

    book: UnderlyingBook
    mark: float
    depth: DepthCurve | None
    sides: tuple[IntArray, FloatArray, int]  # weighted scenarios, their -w, start of the up side
    es: slice | IntArray  # the ES grid within the scenarios


@dataclass(frozen=True)
class _Asset:
    """What one collateral asset's haircut needs."""

    price: float
    klass: AssetClass
    depth: DepthCurve | None


@dataclass(frozen=True)
class _Context:
    """Everything of a margin that does not depend on the account, for one market snapshot."""

    key: tuple[object, ...]
    names: list[str]
    underlyings: list[_Underlying]
    rho: list[list[float]]
    points: IntArray
    fracs: FloatArray
    tail: int
    assets: list[str]
    asset_data: list[_Asset]
    prices: FloatArray
    version: str


def margin_of_row(book: BookView, row: int, cache: ShortfallCache) -> MarginReport:
    """IM, MM, equities, state and every component of the account at `row` (a one-row report)."""
    ctx = _context(book, cache)
    params = book.params
    columns = [_underlying(u, row, params) for u in ctx.underlyings]
    held = [k for k, c in enumerate(columns) if c[-1]]
    es = var = directional = 0.0
    if held:
        x = [float(c[_DIRECTIONAL]) for c in columns]
        directional = _directional_total(x, ctx.rho, params.correlation.max_credit)
        es, var = _shortfall(ctx, held, row)
    scenario = directional + sum(c[_TWO_SIDED] for c in columns)
    scenario += sum(c[_CONTINGENCIES] for c in columns)
    risk = max(scenario, es)
    liquidity = sum(c[_LIQUIDITY] for c in columns)
    im = risk + liquidity
    mm = params.margin.mm_risk_fraction * risk + params.margin.mm_liquidity_fraction * liquidity
    coll, held_value, deduction_mm, deduction_im = _collateral(book, ctx, row, params)
    equity = held_value + sum(c[_VALUE] for c in columns) - float(book.cost[row])
    equity_mm = equity - deduction_mm
    equity_im = equity - deduction_im
    code = _HEALTHY
    if equity_im < im:
        code = _MARGIN_CALL
    if equity_mm < mm:
        code = _LIQUIDATION
    if equity < 0.0:
        code = _BANKRUPT
    ratio = equity_mm / mm if mm > 0.0 else math.inf
    figures = [equity, equity_mm, equity_im, im, mm, ratio, directional, scenario, es, var]
    one = np.array([*figures, risk, liquidity])[:, None]
    per = np.array([c[:_VALUE] for c in columns]).reshape(len(columns), _VALUE).T[:, None, :]
    return MarginReport(
        accounts=[book.accounts[row]],
        underlyings=ctx.names,
        assets=ctx.assets,
        equity=one[0],
        equity_mm=one[1],
        equity_im=one[2],
        im=one[3],
        mm=one[4],
        ratio_mm=one[5],
        state=np.array([code], dtype=np.int64),
        directional_total=one[6],
        scenario_requirement=one[7],
        es99=one[8],
        var99=one[9],
        risk_requirement=one[10],
        liquidity_addon=one[11],
        per_underlying=UnderlyingComponents(
            **{name: per[i] for i, name in enumerate(UNDERLYING_FIELDS)}
        ),
        collateral=coll,
        params_version=ctx.version,
    )


# ----- the per-market context ---------------------------------------------------------------


def _context(book: BookView, cache: ShortfallCache) -> _Context:
    """The book's context for its current market, parameters and layout (rebuilt on change)."""
    books = list(book.underlyings.values())
    key = (book.market, book.params, len(book.assets), *books, *(b.grid for b in books))
    ctx = cache.row_context
    if (
        isinstance(ctx, _Context)
        and len(ctx.key) == len(key)
        and all(a is b for a, b in zip(ctx.key, key, strict=True))
    ):
        return ctx
    ctx = _build_context(book, cache, books, key)
    cache.row_context = ctx
    return ctx


def _build_context(
    book: BookView, cache: ShortfallCache, books: list[UnderlyingBook], key: tuple[object, ...]
) -> _Context:
    """Prepare the context (once per market snapshot, parameter set or new underlying/asset)."""
    market, params = book.market, book.params
    names = [b.name for b in books]
    model, points, fracs = cache.points(
        names,
        [b.grid for b in books],
        [floored_vol(u, market.underlyings[u].ewma_vol, params) for u in names],
        params,
    )
    unds = []
    for b in books:
        um = market.underlyings[b.name]
        es = b.grid.es_slice if b.grid.es_slice is not None else b.grid.es_index
        unds.append(_Underlying(b, float(um.mark), um.depth, _one_row_sides(b.grid), es))
    prices = book.asset_prices()
    assets = list(book.assets)
    data = []
    for asset, price in zip(assets, prices.tolist(), strict=True):
        given = market.assets.get(asset)
        und = market.underlyings.get(asset)
        klass = asset_class_of(
            asset, params, given.asset_class if given else (und.asset_class if und else None)
        )
        data.append(_Asset(price, klass, und.depth if und is not None else None))
    return _Context(
        key,
        names,
        unds,
        model.rho.tolist(),
        points,
        fracs,
        model.tail,
        assets,
        data,
        prices,
        f"{params.name}@{params.version}",
    )


def _one_row_sides(grid: ScenarioGrid) -> tuple[IntArray, FloatArray, int]:
    """Both sides' weighted scenarios and -w in one array, and where the up side starts."""
    down, up = grid.loss_sides
    index = np.concatenate([down.index, up.index]).astype(np.int64)
    return index, np.concatenate([down.neg_weights, up.neg_weights]), int(down.index.size)


# ----- per underlying -----------------------------------------------------------------------


def _underlying(und: _Underlying, row: int, params: RiskParams) -> tuple[float | bool, ...]:
    """One underlying's components (UNDERLYING_FIELDS order), then the position value and
    whether the account's scenario PnL there is non-zero (it holds something)."""
    ub = und.book
    pnl = ub.pnl[row]
    exposed = bool(np.count_nonzero(pnl))
    delta = float(ub.delta[row])
    units = float(ub.short_units[row])
    nets = ub.basis[row].tolist()
    if not exposed and delta == 0.0 and units == 0.0 and not any(nets):
        return (*_ZERO, float(ub.value[row]), False)
    worst = down = up = 0.0
    if exposed:
        index, neg_weights, split = und.sides
        loss = (pnl.take(index) * neg_weights).tolist()
        down = max(max(loss[:split], default=0.0), 0.0)
        up = max(max(loss[split:], default=0.0), 0.0)
        worst = max(down, up)
    two_sided = min(down, up)
    directional = (1.0 if down >= up else -1.0) * (worst - two_sided)
    rates = params.contingencies
    short = rates.short_option * units * und.mark
    delta_c = rates.delta * abs(delta)
    longs = shorts = 0.0
    for v in nets:
        if v > 0.0:
            longs += v
        elif v < 0.0:
            shorts -= v
    basis = rates.basis * min(longs, shorts)
    liquidity = 0.0
    if und.depth is not None and delta != 0.0:
        beyond = params.haircuts.beyond_last_level_multiplier
        curve = und.depth.slippage(delta > 0.0)
        liquidity = average_slippage(curve, abs(delta), beyond) * abs(delta)
    return (
        worst,
        directional,
        two_sided,
        short + delta_c + basis,
        short,
        delta_c,
        basis,
        liquidity,
        delta,
        float(ub.value[row]),
        exposed,
    )


def _directional_total(x: list[float], rho: list[list[float]], max_credit: float) -> float:
    """max(sqrt(max(0, X' rho X)), (1 - max_credit) sum |X|) for one account."""
    quad = 0.0
    gross = 0.0
    for a, xa in enumerate(x):
        if xa != 0.0:
            gross += abs(xa)
            line = rho[a]
            for b, xb in enumerate(x):
                quad += xa * line[b] * xb
    return max(math.sqrt(max(quad, 0.0)), (1.0 - max_credit) * gross)


def _shortfall(ctx: _Context, held: list[int], row: int) -> tuple[float, float]:
    """ES and VaR of one account: its PnL at each joint draw, interpolated on the held
    underlyings' ES grids from the two grid points around the draw (24 KiB of points a draw row
    where the dense product reads the whole 1 MiB weight matrix), then the worst `tail` draws."""
    grid_pnl = np.concatenate([*(u.book.pnl[row, u.es] for u in ctx.underlyings), _TAIL_PAD])
    steps = grid_pnl[1:] - grid_pnl[:-1]
    points, fracs = ctx.points, ctx.fracs
    if len(held) < len(ctx.underlyings):
        points, fracs = points[held], fracs[held]
    at = grid_pnl.take(points)
    at += steps.take(points) * fracs
    joint = at.sum(axis=0) if at.shape[0] > 1 else at[0]
    tail = ctx.tail
    joint.partition(tail - 1)
    return max(-float(joint[:tail].sum()) / tail, 0.0), max(-float(joint[tail - 1]), 0.0)


# ----- slippage and collateral ----------------------------------------------------------------


def average_slippage(curve: SlippageCurve, notional: float, beyond: float) -> float:
    """SlippageCurve.average for one notional, in Python floats (the same operations)."""
    q = abs(notional)
    if q <= 0.0:
        return 0.0
    d, x, area = _knots(curve)
    inside = min(q, d[-1])
    pos = min(max(bisect_right(d, inside) - 1, 0), len(d) - 2)
    width = d[pos + 1] - d[pos]
    frac = (inside - d[pos]) / width if width > 0.0 else 0.0
    x_end = x[pos] + frac * (x[pos + 1] - x[pos])
    partial = area[pos] + (inside - d[pos]) * (x[pos] + x_end) / 2.0
    extra = (q - inside) * beyond * curve.last_bps
    return (partial + extra) / q / BPS


def _knots(curve: SlippageCurve) -> tuple[list[float], list[float], list[float]]:
    """The curve's knots as Python lists, converted once per curve."""
    cached: tuple[list[float], list[float], list[float]] | None = curve.__dict__.get("_lists")
    if cached is None:
        cached = (curve.notional.tolist(), curve.bps.tolist(), curve.area.tolist())
        curve.__dict__["_lists"] = cached
    return cached


def _collateral(
    book: BookView, ctx: _Context, row: int, params: RiskParams
) -> tuple[CollateralComponents, float, float, float]:
    """Haircut rates and deductions of the account's balances (one row), with the balances'
    value and the total maintenance and initial deductions."""
    count = len(ctx.assets)
    balances = book.collateral[row, :count].tolist()
    table = [[0.0] * count for _ in range(5)]  # balance, rates mm and im, deductions mm and im
    value = 0.0
    for col, amount in enumerate(balances):
        if amount == 0.0:
            continue
        asset = ctx.asset_data[col]
        h_mm, h_im = _haircut(asset, amount, params)
        notional = abs(amount) * asset.price
        table[0][col], table[1][col], table[2][col] = amount, h_mm, h_im
        table[3][col], table[4][col] = notional * h_mm, notional * h_im
        value += amount * asset.price
    arr = np.array(table).reshape(5, 1, count)
    coll = CollateralComponents(arr[0], ctx.prices, arr[1], arr[2], arr[3], arr[4])
    return coll, value, sum(table[3]), sum(table[4])


def _haircut(asset: _Asset, balance: float, params: RiskParams) -> tuple[float, float]:
    """Maintenance and initial haircut rates of one balance (engine.haircuts.haircut_rates)."""
    hp = params.haircuts
    rate = hp.base[asset.klass]
    if asset.klass is AssetClass.STABLECOIN and asset.price < hp.depeg_threshold:
        rate += 1.0 - asset.price
    if asset.depth is not None:
        curve = asset.depth.slippage(balance > 0.0)
        notional = abs(balance) * asset.price
        rate += average_slippage(curve, notional, hp.beyond_last_level_multiplier)
    h_mm = min(rate, 1.0)
    return h_mm, min(hp.im_multiplier * h_mm, 1.0)
