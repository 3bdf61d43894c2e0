"""PMRM_2's contingencies: naked short options, perp notional, collateral haircuts, oracle
confidence and the forward (basis) contingency. Charges are positive amounts here; Derive's
reports state them negative (margin = mark-to-market minus requirement)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import FloatArray
from engine.derive.book import ExpiryBook
from engine.derive.params import Pmrm2Params, Scenario, VolShock
from engine.derive.portfolio import Portfolio
from engine.derive.shocks import basis_factor, confidence_contingency


@dataclass(frozen=True)
class Contingencies:
    """The charges added to the scenario loss: MM's, IM's on top of MM's, and their parts."""

    mm: float
    im: float
    oracle: float
    perp_mm: float
    perp_im: float
    option_mm: float
    option_im: float
    collateral_mm: float
    collateral_im: float


def _pair_shorts(a: float, b: float) -> float:
    """Naked shorts left by two holdings at one strike: a short nets against a long."""
    if a * b < 0:
        return -a - min(-a, b) if a < 0 else -b - min(a, -b)
    if a < 0:
        return abs(a) + abs(b)
    return 0.0


def naked_shorts(strikes: list[float], amounts: list[float]) -> float:
    """Shorts of one expiry not offset by a long at the same strike (call or put alike).

    As PMRM_2 filters them: each holding not yet seen is paired with every later one at its
    strike (those are then seen); a short with no partner counts whole.
    """
    seen = [False] * len(strikes)
    total = 0.0
    for i, (strike, amount) in enumerate(zip(strikes, amounts, strict=True)):
        if seen[i]:
            continue
        found = False
        for j in range(i + 1, len(strikes)):
            if strikes[j] == strike:
                seen[j] = True
                total += _pair_shorts(amount, amounts[j])
                found = True
        if not found and amount < 0:
            total += -amount
    return total


def expiry_naked_shorts(book: ExpiryBook) -> FloatArray:
    """(n_e,) naked shorts of each expiry."""
    out = np.zeros(book.seconds.size)
    for e in range(book.seconds.size):
        members = book.expiry_index == e
        out[e] = naked_shorts(list(book.strike[members]), list(book.amount[members]))
    return out


def basis_moves(params: Pmrm2Params) -> list[Scenario]:
    """The forward contingency's two spot moves (vol unchanged, undamped)."""
    basis = params.basis_contingency
    return [
        Scenario(spot_shock=s, vol_shock=VolShock.NONE, dampening=1.0)
        for s in (basis.scenario_spot_up, basis.scenario_spot_down)
    ]


def forward_contingency(
    book: ExpiryBook, params: Pmrm2Params, marks: FloatArray, moved: FloatArray
) -> float:
    """Sum over expiries of the worse loss under the two basis moves (``moved``: their expiry
    values, no static discount), capped at 0, times add + mult x T. As Derive states it (<= 0)."""
    worst = np.minimum(np.min(moved - marks, axis=0), 0.0)
    return float(np.sum(worst * basis_factor(book.seconds, params.basis_contingency)))


def contingencies(
    portfolio: Portfolio, book: ExpiryBook, params: Pmrm2Params, collateral_values: FloatArray
) -> Contingencies:
    """Every contingency of the portfolio (positive amounts)."""
    other = params.other_contingency
    spot_conf = portfolio.spot_confidence
    min_conf = min(spot_conf, portfolio.perp_confidence) if portfolio.perp_position else spot_conf
    perp_notional = abs(portfolio.perp_position) * portfolio.spot_price
    shorts = float(np.sum(expiry_naked_shorts(book))) * portfolio.spot_price
    net_options = np.bincount(
        book.expiry_index, weights=np.abs(book.amount), minlength=book.seconds.size
    )
    collateral_conf = np.minimum([c.confidence for c in portfolio.collaterals], spot_conf).astype(
        np.float64
    )
    oracle = (
        float(confidence_contingency(min_conf, perp_notional, other))
        + float(
            np.sum(
                confidence_contingency(
                    np.minimum(book.feed_confidence, min_conf),
                    net_options * portfolio.spot_price,
                    other,
                )
            )
        )
        + float(np.sum(confidence_contingency(collateral_conf, collateral_values, other)))
    )
    mm_haircut = np.array([c.mm_haircut for c in portfolio.collaterals], dtype=np.float64)
    im_haircut = np.array([c.im_haircut for c in portfolio.collaterals], dtype=np.float64)
    parts = {
        "perp_mm": perp_notional * other.mm_perp_percent,
        "perp_im": perp_notional * other.im_perp_percent,
        "option_mm": shorts * other.mm_option_percent,
        "option_im": shorts * other.im_option_percent,
        "collateral_mm": float(np.sum(collateral_values * mm_haircut)),
        "collateral_im": float(np.sum(collateral_values * im_haircut)),
    }
    return Contingencies(
        mm=parts["perp_mm"] + parts["option_mm"] + parts["collateral_mm"],
        im=parts["perp_im"] + parts["option_im"] + parts["collateral_im"] + oracle,
        oracle=oracle,
        **parts,
    )
