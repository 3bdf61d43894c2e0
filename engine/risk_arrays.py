"""Per-instrument unit values, delta notionals and risk arrays for one underlying (section 4).

Units follow docs/engine-design.md: linear contracts and options per contract (contract size
included), inverse contracts per coin of exposure, spot per coin. R[i, j] is the value per unit in
scenario j minus the value now; options are fully repriced with Black-76 at the shocked vol, on
the forward moved with the underlying, with the base vol read sticky-strike from the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine import black76
from engine.arrays import YEAR_SECONDS, FloatArray
from engine.errors import EngineError
from engine.instruments import KIND_CODES, InstrumentArrays, InstrumentKind
from engine.market import UnderlyingMarket
from engine.params import VolShockParams
from engine.scenarios import ScenarioGrid, shocked_vols

OPTION = KIND_CODES[InstrumentKind.OPTION]


class MissingMarketData(EngineError, ValueError):
    """The market lacks something an instrument needs (a vol surface for options)."""


@dataclass(frozen=True)
class Valuation:
    """Unit values now [I], delta notionals [I] (dValue/dm), risk arrays [I, J]."""

    value: FloatArray
    delta: FloatArray
    risk: FloatArray
    forward: FloatArray
    vol: FloatArray


def value_instruments(
    arrays: InstrumentArrays,
    own_marks: FloatArray,
    market: UnderlyingMarket,
    grid: ScenarioGrid,
    as_of: float,
    shock: VolShockParams,
    underlying: str = "",
) -> Valuation:
    """Value every instrument of one underlying now and in every scenario of its grid."""
    t = np.where(np.isnan(arrays.expiry), 0.0, (arrays.expiry - as_of) / YEAR_SECONDS)
    forward = np.asarray(market.forward(np.maximum(t, 0.0)), dtype=np.float64)
    is_option = arrays.kind == OPTION
    linear_forward = np.where(np.isnan(own_marks) | is_option, forward, own_marks)
    per_unit = np.where(arrays.inverse, 1.0, arrays.size)
    value = per_unit * linear_forward
    delta = value.copy()
    risk = value[:, None] * grid.moves[None, :]
    vol = np.full(t.shape, np.nan)
    if is_option.any():
        _value_options(arrays, is_option, t, forward, market, grid, shock, underlying, out=risk)
        opt = _option_now(arrays, is_option, t, forward, market, underlying)
        value[is_option], delta[is_option], vol[is_option] = opt
    return Valuation(value, delta, risk, linear_forward, vol)


def _base_vols(
    arrays: InstrumentArrays,
    mask: np.ndarray,
    t: FloatArray,
    forward: FloatArray,
    market: UnderlyingMarket,
    underlying: str,
) -> FloatArray:
    """Sticky-strike base vols of the options under mask, from the surface."""
    if market.vol_surface is None:
        raise MissingMarketData(f"underlying {underlying}: options need a vol_surface")
    k = np.log(arrays.strike[mask] / forward[mask])
    return np.asarray(market.vol_surface.vol(np.maximum(t[mask], 0.0), k), dtype=np.float64)


def _option_now(
    arrays: InstrumentArrays,
    mask: np.ndarray,
    t: FloatArray,
    forward: FloatArray,
    market: UnderlyingMarket,
    underlying: str,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Value, delta notional and base vol of the options now."""
    sigma = _base_vols(arrays, mask, t, forward, market, underlying)
    f, k, tt, call, size = (
        forward[mask],
        arrays.strike[mask],
        t[mask],
        arrays.is_call[mask],
        arrays.size[mask],
    )
    value = size * black76.price(f, k, sigma, tt, call)
    delta = size * black76.delta(f, k, sigma, tt, call) * f
    return value, delta, sigma


def _value_options(
    arrays: InstrumentArrays,
    mask: np.ndarray,
    t: FloatArray,
    forward: FloatArray,
    market: UnderlyingMarket,
    grid: ScenarioGrid,
    shock: VolShockParams,
    underlying: str,
    out: FloatArray,
) -> None:
    """Write the options' risk arrays into out[mask] (full Black-76 revaluation)."""
    sigma = _base_vols(arrays, mask, t, forward, market, underlying)
    tt = t[mask]
    up, down = shocked_vols(sigma, tt * 365.0, shock)
    state = grid.vol_state[None, :]
    vols = np.where(state > 0, up[:, None], np.where(state < 0, down[:, None], sigma[:, None]))
    f = forward[mask][:, None]
    k = arrays.strike[mask][:, None]
    call = arrays.is_call[mask][:, None]
    size = arrays.size[mask][:, None]
    now = black76.price(f, k, sigma[:, None], tt[:, None], call)
    moved = black76.price(f * (1.0 + grid.moves[None, :]), k, vols, tt[:, None], call)
    out[mask] = size * (moved - now)


def spot_valuation(price: float, grid: ScenarioGrid) -> tuple[float, float, FloatArray]:
    """Value, delta notional and risk array of one coin of a spot asset (collateral)."""
    return price, price, price * grid.moves
