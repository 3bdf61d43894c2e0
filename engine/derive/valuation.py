"""PMRM_2's scenario valuation, vectorised over scenarios x options: each expiry's shocked value
and each scenario's P&L against the mark (perp, options after static discount, risk-cancelling
collateral), all dampened by the scenario's factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import BoolArray, FloatArray, IntArray
from engine.derive.book import ExpiryBook
from engine.derive.params import Pmrm2Params, Scenario, VolShock
from engine.derive.pricing import option_prices
from engine.derive.shocks import (
    k_star,
    skew_cap,
    skew_multiplier,
    static_discounts,
    vol_shock_multipliers,
    year_fraction,
)

VOL_CODES = {shock: code for code, shock in enumerate(VolShock)}


@dataclass(frozen=True)
class ScenarioGrid:
    """Scenarios as arrays (length n_s): spot multiplier, dampening and vol move (its code)."""

    spot_shock: FloatArray
    dampening: FloatArray
    vol_code: IntArray

    @classmethod
    def of(cls, scenarios: list[Scenario]) -> ScenarioGrid:
        """The grid of a list of scenarios."""
        return cls(
            spot_shock=np.array([s.spot_shock for s in scenarios], dtype=np.float64),
            dampening=np.array([s.dampening for s in scenarios], dtype=np.float64),
            vol_code=np.array([VOL_CODES[s.vol_shock] for s in scenarios], dtype=np.int64),
        )

    def is_(self, shock: VolShock) -> BoolArray:
        """Mask of the scenarios with a given vol move."""
        return np.asarray(self.vol_code == VOL_CODES[shock])

    @property
    def skew(self) -> BoolArray:
        """Mask of the two skew shocks (LINEAR, ABS)."""
        return np.asarray(self.is_(VolShock.LINEAR) | self.is_(VolShock.ABS))


def skew_vol_multipliers(book: ExpiryBook, params: Pmrm2Params, linear: bool) -> FloatArray:
    """Each option's vol multiplier under the linear or abs skew shock (floored at 0)."""
    sqrt_tau = np.sqrt(year_fraction(book.seconds))[book.expiry_index]
    forward = book.forward[book.expiry_index]
    with np.errstate(divide="ignore"):
        k = np.log(book.strike / forward)
    k = k if linear else np.abs(k)
    cap = skew_cap(sqrt_tau, params.skew_shock, linear)
    mult = skew_multiplier(k, cap, k_star(sqrt_tau, params.skew_shock))
    return np.asarray(np.maximum(mult, 0.0))


def _vols(book: ExpiryBook, grid: ScenarioGrid, params: Pmrm2Params) -> FloatArray:
    """(n_s, n_o) vols: shocked up (floored), down, unchanged, or skewed."""
    up, down = vol_shock_multipliers(book.seconds, params.vol_shock)
    e = book.expiry_index
    vol = np.broadcast_to(book.vol, (grid.spot_shock.size, book.vol.size))
    up_vol = np.maximum(params.vol_shock.min_vol_up_shock, book.vol * up[e])
    for shock, shocked in ((VolShock.UP, up_vol), (VolShock.DOWN, book.vol * down[e])):
        vol = np.where(grid.is_(shock)[:, None], shocked[None, :], vol)
    for shock in (VolShock.LINEAR, VolShock.ABS):
        mask = grid.is_(shock)
        if mask.any():
            skewed = book.vol * skew_vol_multipliers(book, params, shock is VolShock.LINEAR)
            vol = np.where(mask[:, None], skewed[None, :], vol)
    return np.asarray(vol)


def _forwards(book: ExpiryBook, grid: ScenarioGrid) -> FloatArray:
    """(n_s, n_o) forwards: the variable portion moves with spot, except in the skew shocks."""
    e = book.expiry_index
    shock = np.where(grid.skew, 1.0, grid.spot_shock)
    return np.asarray(shock[:, None] * book.forward_variable[e] + book.forward_fixed[e])


def expiry_values(book: ExpiryBook, grid: ScenarioGrid, params: Pmrm2Params) -> FloatArray:
    """(n_s, n_e) value of each expiry's options in each scenario (no static discount)."""
    if book.strike.size == 0:
        return np.zeros((grid.spot_shock.size, book.seconds.size))
    e = book.expiry_index
    prices = option_prices(
        _forwards(book, grid),
        book.strike,
        _vols(book, grid, params),
        book.seconds[e],
        book.discount[e],
        book.is_call,
    )
    return np.asarray((prices * book.amount) @ book.onehot)


def option_pnls(
    book: ExpiryBook, grid: ScenarioGrid, params: Pmrm2Params, values: FloatArray, marks: FloatArray
) -> FloatArray:
    """(n_s,) options' P&L from the expiries' scenario values: static-discounted value minus
    mark, dampened; in the skew shocks each expiry counts as a loss whatever its sign (the skew
    rotated the worse way)."""
    pos, neg = static_discounts(book.rate, book.seconds, book.discount, params.margin)
    discounted = values * np.where(values >= 0, pos, neg)
    pnl = (discounted - marks) * grid.dampening[:, None]
    return np.asarray(np.where(grid.skew[:, None], -np.abs(pnl), pnl).sum(axis=1))


def linear_pnls(grid: ScenarioGrid, exposure: float) -> FloatArray:
    """(n_s,) P&L of a spot-linear exposure (perp notional, risk-cancelling collateral value):
    exposure x (spot shock - 1), dampened."""
    return np.asarray(exposure * (grid.spot_shock - 1.0) * grid.dampening)
