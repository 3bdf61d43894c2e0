"""Derive's PMRM_2 margin of one portfolio: marks, scenario P&Ls, contingencies, IM and MM.

margin = worst(forward contingency, every scenario P&L) x loss factor - contingencies + MtM,
in Derive's sign convention (negative: short of margin). IM adds its own contingencies to MM's
and, on a stable depeg, raises its loss factor. Written from PMRMLib_2.sol (derivexyz/v2-core).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import FloatArray
from engine.derive.book import ExpiryBook, arrange
from engine.derive.contingencies import (
    Contingencies,
    basis_moves,
    contingencies,
    forward_contingency,
)
from engine.derive.params import Pmrm2Params, Scenario, VolShock
from engine.derive.portfolio import Portfolio
from engine.derive.shocks import stable_loss_factor
from engine.derive.valuation import ScenarioGrid, expiry_values, linear_pnls, option_pnls

UNSHOCKED = Scenario(spot_shock=1.0, vol_shock=VolShock.NONE, dampening=1.0)
"""The scenario whose expiry values are the marks."""


@dataclass(frozen=True)
class Pmrm2Margin:
    """A portfolio's PMRM_2 figures, in Derive's units and signs."""

    im: float
    mm: float
    scenario_pnls: FloatArray
    forward_contingency: float
    contingencies: Contingencies
    im_factor: float
    mm_factor: float
    option_mtm: float
    collateral_mtm: float
    perp_mtm: float
    portfolio_mtm: float
    expiry_marks: FloatArray

    @property
    def worst_loss(self) -> float:
        """The scenario loss the margin takes: the worst P&L, or the forward contingency."""
        return min(self.forward_contingency, float(np.min(self.scenario_pnls)))


def collateral_values(portfolio: Portfolio) -> FloatArray:
    """Each collateral's value in the stable: amount x price / stable price."""
    return np.array(
        [c.amount * c.price / portfolio.stable_price for c in portfolio.collaterals],
        dtype=np.float64,
    )


def scenario_pnls(
    portfolio: Portfolio,
    book: ExpiryBook,
    params: Pmrm2Params,
    values: FloatArray,
    marks: FloatArray,
) -> FloatArray:
    """(n_s,) each scenario's P&L against the mark: perp, options (from the expiries' scenario
    values), risk-cancelling collateral."""
    grid = ScenarioGrid.of(params.scenarios)
    cancelling = sum(
        (
            v
            for v, c in zip(collateral_values(portfolio), portfolio.collaterals, strict=True)
            if c.risk_cancelling
        ),
        0.0,
    )
    perp = linear_pnls(grid, portfolio.perp_position * portfolio.perp_price)
    options = option_pnls(book, grid, params, values, marks)
    return np.asarray(perp + options + linear_pnls(grid, float(cancelling)))


def margin(portfolio: Portfolio, params: Pmrm2Params) -> Pmrm2Margin:
    """IM, MM and every intermediate figure of a portfolio under PMRM_2."""
    book = arrange(portfolio)
    n = len(params.scenarios)
    grid = ScenarioGrid.of([*params.scenarios, UNSHOCKED, *basis_moves(params)])
    expiries = expiry_values(book, grid, params)  # one valuation: scenarios, marks, basis moves
    marks = expiries[n]
    pnls = scenario_pnls(portfolio, book, params, expiries[:n], marks)
    forward = forward_contingency(book, params, marks, expiries[n + 1 :])
    values = collateral_values(portfolio)
    charges = contingencies(portfolio, book, params, values)
    worst = min(forward, float(np.min(pnls)))
    perp_mtm = portfolio.perp_pnl + portfolio.perp_funding
    mtm = portfolio.cash + perp_mtm + float(np.sum(marks)) + float(np.sum(values))
    other, factors = params.other_contingency, params.margin
    im_factor = stable_loss_factor(factors.im_factor, portfolio.stable_price, other, True)
    mm_factor = stable_loss_factor(factors.mm_factor, portfolio.stable_price, other, False)
    return Pmrm2Margin(
        im=worst * im_factor - charges.im - charges.mm + mtm,
        mm=worst * mm_factor - charges.mm + mtm,
        scenario_pnls=pnls,
        forward_contingency=forward,
        contingencies=charges,
        im_factor=im_factor,
        mm_factor=mm_factor,
        option_mtm=float(np.sum(marks)),
        collateral_mtm=float(np.sum(values)),
        perp_mtm=perp_mtm,
        portfolio_mtm=mtm,
        expiry_marks=marks,
    )
