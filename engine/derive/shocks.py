"""PMRM_2's per-expiry formulas: discounting, vol and skew shocks, forward portions, contingency
rates. Each takes floats or numpy arrays that broadcast together and is written from
PMRMLib_2.sol / PMRM_2.sol (derivexyz/v2-core) in floating point.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.arrays import YEAR_SECONDS, FloatArray
from engine.derive.params import (
    BasisContingencyParams,
    MarginParams,
    OtherContingencyParams,
    SkewShockParams,
    VolShockParams,
)

ArrayLike = npt.ArrayLike
MONTH_SECONDS = 30 * 86400.0
"""The vol shocks' reference tenor: 30 days."""
SETTLEMENT_WINDOW_S = 1800.0
"""The last 30 minutes before expiry, over which Derive's forward fixes into its settlement."""


def _f(x: ArrayLike) -> FloatArray:
    """The input as a float64 array."""
    return np.asarray(x, dtype=np.float64)


def year_fraction(seconds: ArrayLike) -> FloatArray:
    """Seconds as years of 365 days (Black76.annualise)."""
    return _f(seconds) / YEAR_SECONDS


def discount_factor(rate: ArrayLike, seconds: ArrayLike) -> FloatArray:
    """exp(-r T) with the rate floored at 0: PMRM_2 assumes a non-negative rate."""
    return np.exp(-np.maximum(_f(rate), 0.0) * year_fraction(seconds))


def forward_portions(forward: ArrayLike, seconds: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(fixed, variable) parts of the forward; only the variable part moves with spot.

    In the settlement window the forward is a time-weighted mix of the settlement average
    (fixed) and the live forward: F (1 - T/30min) is fixed and F T/30min still moves.
    """
    f, t = np.broadcast_arrays(_f(forward), _f(seconds))
    moving = np.where(t < SETTLEMENT_WINDOW_S, np.maximum(t, 0.0) / SETTLEMENT_WINDOW_S, 1.0)
    return np.asarray(f * (1.0 - moving)), np.asarray(f * moving)


def vol_shock_multipliers(
    seconds: ArrayLike, params: VolShockParams
) -> tuple[FloatArray, FloatArray]:
    """(up, down) vol multipliers: 1 + up x s and max(0, 1 - down x s), where
    s = (30d / max(T, floor))^p, p the short-term power up to 30 days and the long-term beyond."""
    t = _f(seconds)
    ratio = MONTH_SECONDS / np.maximum(t, params.dte_floor_s)
    power = np.where(t <= MONTH_SECONDS, params.short_term_power, params.long_term_power)
    scale = ratio**power
    up = 1.0 + params.vol_range_up * scale
    down = np.maximum(0.0, 1.0 - params.vol_range_down * scale)
    return np.asarray(up), np.asarray(down)


def static_discounts(
    rate: ArrayLike, seconds: ArrayLike, discount: ArrayLike, params: MarginParams
) -> tuple[FloatArray, FloatArray]:
    """(positive, negative) static discounts of a shocked expiry value.

    A positive value is scaled by base x exp(-T (r long_mult + long_add)), a negative one by
    base_neg / exp(-T (r short_mult + short_add)), capped at 1 / discount (the undiscounted
    value): longs lose time value, shorts are charged more of it. The rate is floored at 0.
    """
    r = np.maximum(_f(rate), 0.0)
    tau = year_fraction(seconds)
    pos_rate = r * params.long_rate_mult_scale + params.long_rate_add_scale
    neg_rate = r * params.short_rate_mult_scale + params.short_rate_add_scale
    pos = params.long_base_static_discount * np.exp(-tau * pos_rate)
    neg = params.short_base_static_discount / np.exp(-tau * neg_rate)
    return np.asarray(pos), np.asarray(np.minimum(1.0 / _f(discount), neg))


def skew_cap(sqrt_tau: ArrayLike, params: SkewShockParams, linear: bool) -> FloatArray:
    """The largest skew vol multiplier move: c_base sqrt(T) + base_cap (linear or abs)."""
    if linear:
        return _f(params.linear_c_base * _f(sqrt_tau) + params.linear_base_cap)
    return _f(params.abs_c_base * _f(sqrt_tau) + params.abs_base_cap)


def k_star(sqrt_tau: ArrayLike, params: SkewShockParams) -> FloatArray:
    """Where the skewed surface flattens: max(min_k*, sqrt(T) width (static + scale sqrt(T)))."""
    s = _f(sqrt_tau)
    vol_param = params.vol_param_static + s * params.vol_param_scale
    return np.maximum(params.min_k_star, s * params.width_scale * vol_param)


def skew_multiplier(k: ArrayLike, cap: ArrayLike, kstar: ArrayLike) -> FloatArray:
    """1 + k cap / k*, clipped to [1 - cap, 1 + cap] (k = log-moneyness, |k| for the abs shock)."""
    kk, c, ks = _f(k), _f(cap), _f(kstar)
    move = kk * c / ks
    return np.asarray(1.0 + np.where(kk >= 0, np.minimum(c, move), np.maximum(-c, move)))


def basis_factor(seconds: ArrayLike, params: BasisContingencyParams) -> FloatArray:
    """The forward contingency's scale: add + mult x T (years)."""
    return params.add_factor + params.mult_factor * year_fraction(seconds)


def confidence_contingency(
    min_confidence: ArrayLike, notional: ArrayLike, params: OtherContingencyParams
) -> FloatArray:
    """(1 - confidence) x margin x notional when the confidence is below the threshold, else 0."""
    conf = _f(min_confidence)
    charge = (1.0 - conf) * params.conf_margin * _f(notional)
    return np.asarray(np.where(conf < params.conf_threshold, charge, 0.0))


def stable_loss_factor(
    base: float, stable_price: float, params: OtherContingencyParams, initial: bool
) -> float:
    """The loss factor, raised for IM by (threshold - stable price) x peg factor on a depeg."""
    if initial and stable_price < params.peg_loss_threshold:
        return base + (params.peg_loss_threshold - stable_price) * params.peg_loss_factor
    return base
