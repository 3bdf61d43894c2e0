"""The requirement of section 5 and the equities of section 6 for many accounts at once.

From the per-underlying scenario vectors it computes worst losses and their directional split,
contingencies, the correlated directional total with its capped credit, ES_99 / VaR_99 on the
joint Student-t moves, the liquidity add-on, IM and MM; then equity, haircut equities and state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.aggregation import correlation_matrix, directional_total, worst_losses_at
from engine.arrays import BoolArray, FloatArray, IntArray
from engine.book_state import UnderlyingBook
from engine.contingencies import contingency_parts, hedged_notional
from engine.haircuts import asset_class_of, deductions, haircut_rates
from engine.margin import CollateralComponents, MarginReport, UnderlyingComponents
from engine.market import DepthCurve, MarketSnapshot
from engine.params import RiskParams
from engine.scenarios import ScenarioGrid
from engine.shortfall import ShortfallModel
from engine.states import classify, ratio_mm
from engine.volatility import floored_vol


@dataclass(frozen=True)
class RequirementInputs:
    """What the requirement of some accounts (rows of the book) is computed from."""

    accounts: list[str]
    underlyings: list[str]
    books: list[UnderlyingBook]
    rows: np.ndarray
    market: MarketSnapshot
    cost: FloatArray
    assets: list[str]
    asset_prices: FloatArray
    collateral: FloatArray
    has_positions: BoolArray


class ShortfallCache:
    """The joint draws for a set of underlyings and parameters, drawn again only on change.

    Its keys are checked by identity first (the same parameter set and grid objects as last
    time, the usual case on every fill) so that a one-account margin pays no deep comparison.
    """

    def __init__(self) -> None:
        self._names: tuple[str, ...] | None = None
        self._params: RiskParams | None = None
        self._model: ShortfallModel | None = None
        self._grids: tuple[ScenarioGrid, ...] = ()
        self._sigmas: tuple[float, ...] = ()
        self._weights: FloatArray | None = None
        self._points: tuple[IntArray, FloatArray] | None = None
        self.row_context: object | None = None  # engine.account_margin's, per market snapshot

    def model(self, underlyings: Sequence[str], params: RiskParams) -> ShortfallModel:
        """The model (draws, correlation) of these underlyings under these parameters."""
        names = tuple(underlyings)
        if self._model is None or names != self._names or not self._same(params):
            rho = correlation_matrix(names, params.correlation)
            self._model = ShortfallModel(names, rho, params.shortfall)
            self._names, self._weights, self._points = names, None, None
        self._params = params
        return self._model

    def _same(self, params: RiskParams) -> bool:
        """True when params draw the same model as the cached one's."""
        old = self._params
        return params is old or (
            old is not None
            and params.correlation == old.correlation
            and params.shortfall == old.shortfall
        )

    def weights(
        self,
        underlyings: Sequence[str],
        grids: Sequence[ScenarioGrid],
        sigmas: Sequence[float],
        params: RiskParams,
    ) -> tuple[ShortfallModel, FloatArray]:
        """The model and its [U*G, M] interpolation weights for these grids and vols."""
        model = self._refresh(underlyings, grids, sigmas, params)
        if self._weights is None:
            self._weights = model.weights([g.es_moves for g in grids], np.array(sigmas))
        return model, self._weights

    def points(
        self,
        underlyings: Sequence[str],
        grids: Sequence[ScenarioGrid],
        sigmas: Sequence[float],
        params: RiskParams,
    ) -> tuple[ShortfallModel, IntArray, FloatArray]:
        """The model and its [U, M] interpolation points and fractions (ShortfallModel.points)."""
        model = self._refresh(underlyings, grids, sigmas, params)
        if self._points is None:
            self._points = model.points([g.es_moves for g in grids], np.array(sigmas))
        return model, *self._points

    def _refresh(
        self,
        underlyings: Sequence[str],
        grids: Sequence[ScenarioGrid],
        sigmas: Sequence[float],
        params: RiskParams,
    ) -> ShortfallModel:
        """The model, forgetting the derived weights when the grids or vols changed."""
        model = self.model(underlyings, params)
        same = (
            len(grids) == len(self._grids)
            and all(same_grid(a, b) for a, b in zip(grids, self._grids, strict=True))
            and tuple(sigmas) == self._sigmas
        )
        if not same:
            self._weights, self._points = None, None
            self._grids, self._sigmas = tuple(grids), tuple(sigmas)
        return model


def same_grid(a: ScenarioGrid, b: ScenarioGrid) -> bool:
    """The same object (the usual case), else the same scan range, moves and ES grid (another
    book's grid of the same parameters: its interpolation points are the same)."""
    return a is b or (
        a.psr == b.psr
        and np.array_equal(a.moves, b.moves)
        and np.array_equal(a.es_index, b.es_index)
    )


_SHORTFALL = ShortfallCache()


def _take(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """array[rows], as a view when rows are 0..n-1 (the whole book)."""
    n = rows.size
    if n and rows[0] == 0 and rows[-1] == n - 1 and (n == 1 or np.all(np.diff(rows) == 1)):
        return np.asarray(array[:n])
    return np.asarray(array[rows])


def compute_requirement(
    inp: RequirementInputs, params: RiskParams, shortfall: ShortfallCache | None = None
) -> MarginReport:
    """IM, MM, equities, state and every component for the accounts of the inputs."""
    n, u_count = len(inp.accounts), len(inp.books)
    comp = {name: np.zeros((n, u_count)) for name in UnderlyingComponents.__dataclass_fields__}
    comp["_x"], comp["_value"] = np.zeros((n, u_count)), np.zeros((n, u_count))
    es_blocks: list[FloatArray] = []
    for k, book in enumerate(inp.books):
        _underlying_components(book, inp, params, k, comp, es_blocks)
    x = comp.pop("_x")
    rho = (shortfall or _SHORTFALL).model(inp.underlyings, params).rho
    directional = directional_total(x, rho, params.correlation.max_credit)
    scenario = directional + comp["two_sided"].sum(axis=1) + comp["contingencies"].sum(axis=1)
    es, var = _shortfall(inp, params, es_blocks, shortfall or _SHORTFALL)
    risk = np.maximum(scenario, es)
    liquidity = comp["liquidity_addon"].sum(axis=1)
    im = risk + liquidity
    mm = params.margin.mm_risk_fraction * risk + params.margin.mm_liquidity_fraction * liquidity
    value = comp.pop("_value").sum(axis=1)
    equity = inp.collateral @ inp.asset_prices + value - inp.cost
    coll = _collateral(inp, params)
    equity_mm = equity - coll.deduction_mm.sum(axis=1)
    equity_im = equity - coll.deduction_im.sum(axis=1)
    return MarginReport(
        accounts=inp.accounts,
        underlyings=inp.underlyings,
        assets=inp.assets,
        equity=equity,
        equity_mm=equity_mm,
        equity_im=equity_im,
        im=im,
        mm=mm,
        ratio_mm=ratio_mm(equity_mm, mm),
        state=classify(equity, equity_mm, equity_im, im, mm, inp.has_positions),
        directional_total=directional,
        scenario_requirement=scenario,
        es99=es,
        var99=var,
        risk_requirement=risk,
        liquidity_addon=liquidity,
        per_underlying=UnderlyingComponents(**comp),
        collateral=coll,
        params_version=f"{params.name}@{params.version}",
    )


def _underlying_components(
    book: UnderlyingBook,
    inp: RequirementInputs,
    params: RiskParams,
    k: int,
    comp: dict[str, FloatArray],
    es_blocks: list[FloatArray],
) -> None:
    """Fill column k of every per-underlying component from one underlying's vectors."""
    n = len(inp.accounts)
    grid = book.grid
    pnl = _take(book.pnl, inp.rows)
    losses = worst_losses_at(pnl, *grid.loss_sides)
    delta = _take(book.delta, inp.rows)
    market = inp.market.underlyings[book.name]
    short, delta_c, basis = contingency_parts(
        _take(book.short_units, inp.rows),
        np.full(n, market.mark),
        delta,
        hedged_notional(_take(book.basis, inp.rows)),
        params.contingencies,
    )
    comp["worst_loss"][:, k] = losses.worst
    comp["two_sided"][:, k] = losses.two_sided
    comp["directional"][:, k] = losses.directional
    comp["_x"][:, k] = losses.directional
    comp["short_option"][:, k] = short
    comp["delta"][:, k] = delta_c
    comp["basis"][:, k] = basis
    comp["contingencies"][:, k] = short + delta_c + basis
    comp["delta_notional"][:, k] = delta
    comp["liquidity_addon"][:, k] = _liquidity_addon(delta, market.depth, params)
    comp["_value"][:, k] = _take(book.value, inp.rows)
    es_blocks.append(pnl[:, grid.es_index])


def _liquidity_addon(delta: FloatArray, depth: DepthCurve | None, params: RiskParams) -> FloatArray:
    """Cost of closing |net delta| on the side it would hit: slip(|D|) x |D| (0 with no book)."""
    if depth is None:
        return np.zeros(delta.shape)
    return _two_sided_slippage(depth, delta, params.haircuts.beyond_last_level_multiplier)


def _two_sided_slippage(depth: DepthCurve, signed: FloatArray, beyond: float) -> FloatArray:
    """Cost of closing each signed notional: longs sold into the bid, shorts bought back."""
    notional = np.abs(signed)
    out = np.zeros(notional.shape)
    for sell, mask in ((True, signed > 0.0), (False, signed < 0.0)):
        if mask.any():
            out[mask] = depth.slippage(sell).average(notional[mask], beyond) * notional[mask]
    return out


def _shortfall(
    inp: RequirementInputs,
    params: RiskParams,
    blocks: list[FloatArray],
    cache: ShortfallCache,
) -> tuple[FloatArray, FloatArray]:
    """ES_99 and VaR_99 of the accounts' joint PnL on the Student-t moves."""
    n = len(inp.accounts)
    if not blocks or blocks[0].shape[1] == 0 or n == 0:
        return np.zeros(n), np.zeros(n)
    sigmas = [floored_vol(u, inp.market.underlyings[u].ewma_vol, params) for u in inp.underlyings]
    grids = [book.grid for book in inp.books]
    model, weights = cache.weights(inp.underlyings, grids, sigmas, params)
    return model.evaluate(np.hstack(blocks), weights)


def shortfall_of(
    inp: RequirementInputs, params: RiskParams, cache: ShortfallCache | None = None
) -> tuple[FloatArray, FloatArray]:
    """ES_99 and VaR_99 alone (for benchmarks and what-ifs)."""
    blocks = [_take(b.pnl, inp.rows)[:, b.grid.es_index] for b in inp.books]
    return _shortfall(inp, params, blocks, cache or _SHORTFALL)


def _collateral(inp: RequirementInputs, params: RiskParams) -> CollateralComponents:
    """Haircut rates and deductions of every asset balance of the accounts."""
    n, c = inp.collateral.shape
    rate_mm, rate_im = np.zeros((n, c)), np.zeros((n, c))
    for col, asset in enumerate(inp.assets):
        balances = inp.collateral[:, col]
        if not balances.any():
            continue
        given = inp.market.assets.get(asset)
        und = inp.market.underlyings.get(asset)
        klass = asset_class_of(
            asset,
            params,
            given.asset_class if given else (und.asset_class if und else None),
        )
        depth = und.depth if und is not None else None
        price = float(inp.asset_prices[col])
        rate_mm[:, col], rate_im[:, col] = haircut_rates(
            balances, price, klass, depth, params.haircuts
        )
    prices = inp.asset_prices[None, :]
    return CollateralComponents(
        balance=inp.collateral,
        price=inp.asset_prices,
        rate_mm=rate_mm,
        rate_im=rate_im,
        deduction_mm=deductions(inp.collateral, prices, rate_mm),
        deduction_im=deductions(inp.collateral, prices, rate_im),
    )
