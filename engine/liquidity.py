"""Depth-curve slippage (section 6): the average bps paid to trade a notional into a book side.

The curve x(D) runs from (0 notional, 0 bps) through (cumulative_i, bps_i), linear between; the
average slippage of Q is (1/Q) integral_0^Q x(D) dD. Notional beyond the last level is charged
at ``beyond_multiplier`` x the last level. Results are fractions (bps / 1e4).
"""

from __future__ import annotations

import numpy as np

from engine.market import DepthCurve
from engine.types import FloatArray


def _knots(levels_bps: FloatArray, cumulative: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Curve knots (D, x) from the origin, dropping levels that add no notional."""
    d = np.concatenate([[0.0], np.asarray(cumulative, dtype=np.float64)])
    x = np.concatenate([[0.0], np.asarray(levels_bps, dtype=np.float64)])
    keep = np.concatenate([[True], np.diff(d) > 0])
    return d[keep], x[keep]


def average_slippage(
    levels_bps: FloatArray,
    cumulative: FloatArray,
    notional: FloatArray | float,
    beyond_multiplier: float,
) -> FloatArray:
    """Average slippage (fraction) of each notional, vectorised over notionals."""
    q = np.maximum(np.asarray(notional, dtype=np.float64), 0.0)
    d, x = _knots(levels_bps, cumulative)
    area = np.concatenate([[0.0], np.cumsum(np.diff(d) * (x[:-1] + x[1:]) / 2.0)])
    inside = np.minimum(q, d[-1])
    pos = np.clip(np.searchsorted(d, inside, side="right") - 1, 0, max(d.size - 2, 0))
    if d.size > 1:
        span = d[pos + 1] - d[pos]
        x_end = x[pos] + (inside - d[pos]) / span * (x[pos + 1] - x[pos])
        partial = area[pos] + (inside - d[pos]) * (x[pos] + x_end) / 2.0
    else:
        partial = np.zeros(q.shape)
    beyond = np.maximum(q - d[-1], 0.0) * beyond_multiplier * float(levels_bps[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = np.where(q > 0.0, (partial + beyond) / np.where(q > 0.0, q, 1.0), 0.0)
    return np.asarray(avg / 1e4)


def liquidity_cost(
    curve: DepthCurve, notional: FloatArray, sell: FloatArray | bool, beyond_multiplier: float
) -> FloatArray:
    """USD cost of trading each notional: bid side when selling, ask when buying."""
    bid = average_slippage(curve.bps, curve.bid, notional, beyond_multiplier)
    ask = average_slippage(curve.bps, curve.ask, notional, beyond_multiplier)
    return np.asarray(np.where(sell, bid, ask) * np.asarray(notional))
