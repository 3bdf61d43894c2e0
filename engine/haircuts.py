"""Collateral haircuts that rise as the order book thins and the balance grows (section 6).

h = min(1, base(class) + slip(|balance| x price) + depeg), with the slippage of selling the
balance into the bid side (buying a borrowed balance back from the ask side) of the asset's own
book; a stablecoin below the depeg threshold adds (1 - price). Maintenance uses h, initial
min(1, 1.25 h). Both a holding and a liability deduct |balance| x price x h from equity (a
liability counts at full value times (1 + h), its value already being in equity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.arrays import FloatArray
from engine.market import DepthCurve
from engine.params import AssetClass, HaircutParams, RiskParams


def asset_class_of(asset: str, params: RiskParams, given: AssetClass | str | None) -> AssetClass:
    """The class of a collateral asset: the market's, else by the parameter lists."""
    if isinstance(given, AssetClass):
        return given
    if given is not None:
        return AssetClass(str(given).lower())
    if asset == params.settlement_currency:
        return AssetClass.FIAT
    if asset in params.stablecoins:
        return AssetClass.STABLECOIN
    if asset in params.majors:
        return AssetClass.MAJOR
    return AssetClass.LONG_TAIL


def haircut_rates(
    balances: FloatArray,
    price: float,
    asset_class: AssetClass,
    depth: DepthCurve | None,
    params: HaircutParams,
) -> tuple[FloatArray, FloatArray]:
    """Maintenance and initial haircut rates for each balance of one asset: ([A], [A])."""
    rate = np.full(balances.shape, params.base[asset_class])
    if asset_class is AssetClass.STABLECOIN and price < params.depeg_threshold:
        rate += 1.0 - price
    if depth is not None:
        rate += _slippage(balances, price, depth, params.beyond_last_level_multiplier)
    h_mm = np.minimum(rate, 1.0)
    h_im = np.minimum(params.im_multiplier * h_mm, 1.0)
    return h_mm, h_im


def _slippage(balances: FloatArray, price: float, depth: DepthCurve, beyond: float) -> FloatArray:
    """Average slippage of closing each balance: bid side for holdings, ask for liabilities."""
    notional = np.abs(balances) * price
    out = np.zeros(notional.shape)
    for sell, mask in ((True, balances > 0.0), (False, balances < 0.0)):
        if mask.any():
            out[mask] = depth.slippage(sell).average(notional[mask], beyond)
    return out


def deductions(balances: FloatArray, price: FloatArray | float, rate: FloatArray) -> FloatArray:
    """Equity deducted for each balance: |balance| x price x h."""
    return np.asarray(np.abs(balances) * price * rate)


def stack_rates(rates: Sequence[FloatArray], accounts: int) -> FloatArray:
    """[A, C] matrix from per-asset rate vectors (empty when there is no asset)."""
    return np.stack(rates, axis=1) if rates else np.zeros((accounts, 0))
