"""Depth-curve slippage (section 6): the average bps paid to trade a notional into a book side.

The curve x(D) runs from (0 notional, 0 bps) through (cumulative_i, bps_i), linear between; the
average slippage of Q is (1/Q) integral_0^Q x(D) dD. Notional beyond the last level is charged
at ``beyond_multiplier`` x the last level. Results are fractions (bps / 1e4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.market import DepthCurve
from engine.types import FloatArray


@dataclass(frozen=True)
class SlippageCurve:
    """One book side as knots (D, x) from the origin with the cumulative area under x(D)."""

    notional: FloatArray
    bps: FloatArray
    area: FloatArray
    last_bps: float

    @classmethod
    def of(cls, levels_bps: FloatArray, cumulative: FloatArray) -> SlippageCurve:
        """The curve of a side, dropping levels that add no notional."""
        d = np.concatenate([[0.0], np.asarray(cumulative, dtype=np.float64)])
        x = np.concatenate([[0.0], np.asarray(levels_bps, dtype=np.float64)])
        keep = np.concatenate([[True], np.diff(d) > 0])
        d, x = d[keep], x[keep]
        area = np.concatenate([[0.0], np.cumsum(np.diff(d) * (x[:-1] + x[1:]) / 2.0)])
        return cls(d, x, area, float(levels_bps[-1]))

    def average(self, notional: FloatArray | float, beyond_multiplier: float) -> FloatArray:
        """Average slippage (fraction) of each notional."""
        q = np.maximum(np.asarray(notional, dtype=np.float64), 0.0)
        d, x = self.notional, self.bps
        inside = np.minimum(q, d[-1])
        if d.size > 1:
            pos = np.clip(np.searchsorted(d, inside, side="right") - 1, 0, d.size - 2)
            x_end = x[pos] + (inside - d[pos]) / (d[pos + 1] - d[pos]) * (x[pos + 1] - x[pos])
            partial = self.area[pos] + (inside - d[pos]) * (x[pos] + x_end) / 2.0
        else:
            partial = np.zeros(q.shape)
        beyond = np.maximum(q - d[-1], 0.0) * beyond_multiplier * self.last_bps
        safe = np.where(q > 0.0, q, 1.0)
        return np.asarray(np.where(q > 0.0, (partial + beyond) / safe, 0.0) / 1e4)


def average_slippage(
    levels_bps: FloatArray,
    cumulative: FloatArray,
    notional: FloatArray | float,
    beyond_multiplier: float,
) -> FloatArray:
    """Average slippage (fraction) of each notional, vectorised over notionals."""
    return SlippageCurve.of(levels_bps, cumulative).average(notional, beyond_multiplier)


def liquidity_cost(
    curve: DepthCurve, notional: FloatArray, sell: FloatArray | bool, beyond_multiplier: float
) -> FloatArray:
    """USD cost of trading each notional: bid side when selling, ask when buying."""
    bid = curve.slippage(True).average(notional, beyond_multiplier)
    ask = curve.slippage(False).average(notional, beyond_multiplier)
    return np.asarray(np.where(sell, bid, ask) * np.asarray(notional))
