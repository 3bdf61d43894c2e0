"""The slippage curve of one book side (spec sections 5 and 6): the average bps paid to trade Q.

A book side gives the cumulative USD notional D_i available within bps_i of mid. Read as a
function x(D) (the bps level reached after trading D), the curve runs from the origin (0 notional,
0 bps) through the knots (D_i, bps_i), linear between them. Where a level adds no notional
(D_i = D_{i-1}, including an empty top of book), x(D) jumps straight to the worse level: the next
dollar is only available there, so a thinner book never costs less. Notional beyond the last level
is charged at a flat ``beyond_multiplier`` x the last level. The average slippage of Q is
slip(Q) = (1/Q) integral_0^Q x(D) dD, slip(0) = 0 (its limit), returned as a fraction
(bps / 1e4). A side with no depth at all charges everything as beyond the book.

This module sits below the market data (``engine.market.DepthCurve`` caches its sides' curves)
and the liquidity costs built on them (``engine.liquidity``), so both depend on it one way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import FloatArray

BPS = 1e4  # basis points per unit fraction


@dataclass(frozen=True, eq=False)
class SlippageCurve:
    """One book side as knots (D, x) from the origin with the cumulative area under x(D).

    Knots may repeat a notional (a jump in x); ``area[i]`` is the integral of x up to knot i.
    """

    notional: FloatArray
    bps: FloatArray
    area: FloatArray
    last_bps: float

    @classmethod
    def of(cls, levels_bps: FloatArray, cumulative: FloatArray) -> SlippageCurve:
        """The curve of a side from its bps levels and cumulative notionals (same length)."""
        levels = np.asarray(levels_bps, dtype=np.float64)
        cum = np.asarray(cumulative, dtype=np.float64)
        if levels.ndim != 1 or levels.size == 0 or cum.shape != levels.shape:
            raise ValueError("levels_bps and cumulative: want two non-empty 1-D arrays alike")
        d = np.concatenate([[0.0], np.maximum.accumulate(np.maximum(cum, 0.0))])
        x = np.concatenate([[0.0], levels])
        area = np.concatenate([[0.0], np.cumsum(np.diff(d) * (x[:-1] + x[1:]) / 2.0)])
        return cls(d, x, area, float(levels[-1]))

    def average(self, notional: FloatArray | float, beyond_multiplier: float) -> FloatArray:
        """Average slippage (fraction) of each notional (its absolute value), vectorised."""
        q = np.abs(np.asarray(notional, dtype=np.float64))
        d, x = self.notional, self.bps
        inside = np.minimum(q, d[-1])
        # Last knot at or before each notional: on a jump (repeated D) this picks the worse level.
        pos = np.clip(np.searchsorted(d, inside, side="right") - 1, 0, d.size - 2)
        width = d[pos + 1] - d[pos]
        frac = np.where(width > 0.0, (inside - d[pos]) / np.where(width > 0.0, width, 1.0), 0.0)
        x_end = x[pos] + frac * (x[pos + 1] - x[pos])
        partial = self.area[pos] + (inside - d[pos]) * (x[pos] + x_end) / 2.0
        beyond = (q - inside) * beyond_multiplier * self.last_bps
        safe = np.where(q > 0.0, q, 1.0)
        return np.asarray(np.where(q > 0.0, (partial + beyond) / safe, 0.0) / BPS)
