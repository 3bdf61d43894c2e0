"""Liquidity costs (spec sections 5 and 6): the average slippage and USD cost of trading notionals.

The slippage of one book side is ``engine.slippage.SlippageCurve``; this module applies it to raw
book levels and to a market's ``DepthCurve`` (the bid side to sell, the ask side to buy).
"""

from __future__ import annotations

import numpy as np

from engine.arrays import FloatArray
from engine.market import DepthCurve
from engine.slippage import SlippageCurve


def average_slippage(
    levels_bps: FloatArray,
    cumulative: FloatArray,
    notional: FloatArray | float,
    beyond_multiplier: float,
) -> FloatArray:
    """Average slippage (fraction) of trading each notional into one book side (section 6)."""
    return SlippageCurve.of(levels_bps, cumulative).average(notional, beyond_multiplier)


def liquidity_cost(
    curve: DepthCurve,
    notional: FloatArray | float,
    sell: FloatArray | bool,
    beyond_multiplier: float,
) -> FloatArray:
    """USD cost slip(|Q|) x |Q| of trading each notional: the bid side to sell, ask to buy."""
    q = np.abs(np.asarray(notional, dtype=np.float64))
    if isinstance(sell, bool | np.bool_):
        return np.asarray(curve.slippage(bool(sell)).average(q, beyond_multiplier) * q)
    side = np.asarray(sell, dtype=np.bool_)
    bid = curve.slippage(True).average(q, beyond_multiplier)
    ask = curve.slippage(False).average(q, beyond_multiplier)
    return np.asarray(np.where(side, bid, ask) * q)
