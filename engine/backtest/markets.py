"""The market a backtest step margins against: a snapshot built from the path at that step.

Per underlying: the mark (the path's price), a 5% a year basis, the EWMA vol of the path's
returns under the parameter set's lambda (seeded at its floor, as the stream's estimator is),
a smiled vol surface around the step's implied vol (the path's, else the EWMA of its returns at
0.94), and a book whose depth thins as that vol rises above its calm level. USDC is priced at 1.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import FloatArray
from engine.backtest.path import PricePath
from engine.market import AssetMarket, DepthCurve, MarketSnapshot, UnderlyingMarket, VolSurface
from engine.params import AssetClass, RiskParams
from engine.volatility import EwmaVolatility

BASIS = 0.05
SURFACE_EXPIRIES = (0.05, 0.25, 1.0)
SURFACE_MONEYNESS = (-0.4, -0.2, 0.0, 0.2, 0.4)
SMILE = 0.3
"""Vol at log-moneyness k is atm x (1 + SMILE k^2), the demo's smile."""
DEPTH_BPS = (10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
DEPTH_SHAPE = (0.05, 0.15, 0.4, 1.0, 2.0, 4.0, 6.0)
DEPTH_USD = {"BTC": 4e7, "ETH": 2e7, "SOL": 4e6}
"""Notional within 100 bps of mid in a calm market (the demo's books); others get SOL's."""
CALM_VOL = {"BTC": 0.60, "ETH": 0.75, "SOL": 1.00}
MAJORS = ("BTC", "ETH")
SETTLEMENT = {"USDC": AssetMarket(1.0, AssetClass.STABLECOIN)}
FALLBACK_LAMBDA = 0.94


def ewma_vols(path: PricePath, lam: float, floors: list[float]) -> FloatArray:
    """[T, U] annual EWMA vol at each step, each underlying's estimator seeded at its floor."""
    out = np.zeros_like(path.prices)
    for k, floor in enumerate(floors):
        est = EwmaVolatility.seeded(lam, floor)
        for t in range(path.steps):
            est.update(float(path.prices[t, k]), float(path.times[t]))
            out[t, k] = est.annualised() or floor
    return out


def params_ewma(path: PricePath, params: RiskParams) -> FloatArray:
    """[T, U] the EWMA vols a parameter set's stream would carry on its marks."""
    floors = [params.shortfall.floor_for(u) for u in path.underlyings]
    return ewma_vols(path, params.shortfall.ewma_lambda, floors)


def implied_vols(path: PricePath) -> FloatArray:
    """[T, U] the vol the surfaces are built around: the path's, else its returns' EWMA."""
    calm = [CALM_VOL.get(u, 1.0) for u in path.underlyings]
    fallback = ewma_vols(path, FALLBACK_LAMBDA, calm)
    if path.implied_vols is None:
        return fallback
    return np.asarray(np.where(np.isnan(path.implied_vols), fallback, path.implied_vols))


def surface(atm: float) -> VolSurface:
    """A smiled surface, flat in expiry, around an at-the-money vol."""
    k = np.array(SURFACE_MONEYNESS)
    row = atm * (1.0 + SMILE * k * k)
    return VolSurface(np.array(SURFACE_EXPIRIES), k, np.tile(row, (len(SURFACE_EXPIRIES), 1)))


def depth(underlying: str, vol: float) -> DepthCurve:
    """The book at a vol: the calm depth times calm vol / vol (never deeper than calm)."""
    calm = CALM_VOL.get(underlying, 1.0)
    total = DEPTH_USD.get(underlying, DEPTH_USD["SOL"]) * min(1.0, calm / vol)
    cum = np.array(DEPTH_SHAPE) * total
    return DepthCurve(np.array(DEPTH_BPS), cum, cum)


def snapshot(path: PricePath, step: int, ewma: FloatArray, implied: FloatArray) -> MarketSnapshot:
    """The market at one step, from the step's rows of the EWMA and implied-vol arrays."""
    unds = {
        u: UnderlyingMarket(
            mark=float(path.prices[step, k]),
            asset_class=AssetClass.MAJOR if u in MAJORS else AssetClass.MID_CAP,
            basis=BASIS,
            ewma_vol=float(ewma[k]),
            vol_surface=surface(float(implied[k])),
            depth=depth(u, float(implied[k])),
        )
        for k, u in enumerate(path.underlyings)
    }
    return MarketSnapshot(float(path.times[step]), unds, SETTLEMENT)
