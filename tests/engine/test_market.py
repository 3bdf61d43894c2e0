"""Market data: surface interpolation, depth curves, slippage by hand, the JSON form's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.liquidity import average_slippage
from engine.market import DepthCurve, MarketDataError, VolSurface, market_from_mapping
from tests.engine.market_fixtures import market

SURFACE = VolSurface(
    np.array([0.1, 0.5]), np.array([-0.2, 0.0, 0.2]), np.array([[0.8, 0.6, 0.7], [0.7, 0.5, 0.6]])
)


def test_surface_linear_in_k_and_flat_beyond() -> None:
    assert SURFACE.vol(0.1, -0.1) == pytest.approx(0.7)
    assert SURFACE.vol(0.1, -1.0) == pytest.approx(0.8)
    assert SURFACE.vol(0.1, 5.0) == pytest.approx(0.7)


def test_surface_linear_in_total_variance_between_expiries() -> None:
    t = 0.3
    var = 0.6**2 * 0.1 + (t - 0.1) / 0.4 * (0.5**2 * 0.5 - 0.6**2 * 0.1)
    assert SURFACE.vol(t, 0.0) == pytest.approx(math.sqrt(var / t))
    assert SURFACE.vol(0.01, 0.0) == pytest.approx(0.6)
    assert SURFACE.vol(2.0, 0.0) == pytest.approx(0.5)
    assert SURFACE.vol(np.array([0.1, 0.5]), np.array([0.0, 0.0])).tolist() == pytest.approx(
        [0.6, 0.5]
    )


def test_slippage_by_hand() -> None:
    bps, cum = np.array([10.0, 100.0]), np.array([1e6, 3e6])
    got = average_slippage(bps, cum, np.array([0.0, 1e6, 3e6, 4e6]), 2.0) * 1e4
    assert got[0] == 0.0
    assert got[1] == pytest.approx(5.0)
    assert got[2] == pytest.approx((1e6 * 5 + 2e6 * 55) / 3e6)
    assert got[3] == pytest.approx((1e6 * 5 + 2e6 * 55 + 1e6 * 200) / 4e6)
    assert average_slippage(bps, np.zeros(2), 1e6, 2.0) * 1e4 == pytest.approx(200.0)


def test_depth_validation() -> None:
    with pytest.raises(MarketDataError, match="bid"):
        DepthCurve(np.array([10.0, 20.0]), np.array([2.0, 1.0]), np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda m: m.pop("as_of"), "as_of"),
        (lambda m: m.update(as_of="yesterday"), "as_of"),
        (lambda m: m["underlyings"]["BTC"].update(mark=-1), "underlyings.BTC.mark"),
        (lambda m: m["underlyings"]["BTC"].update(mark=float("nan")), "underlyings.BTC.mark"),
        (
            lambda m: m["underlyings"]["BTC"]["vol_surface"].update(vols=[[0.5]]),
            "underlyings.BTC.vol_surface.vols",
        ),
        (
            lambda m: m["underlyings"]["ETH"].update(asset_class="gold"),
            "underlyings.ETH.asset_class",
        ),
        (lambda m: m["assets"]["USDC"].update(price=0), "assets.USDC.price"),
        (lambda m: m.update(marks={"BTC-PERPETUAL": "x"}), "marks.BTC-PERPETUAL"),
    ],
)
def test_bad_market_names_the_field(patch, message: str) -> None:
    data = market()
    patch(data)
    with pytest.raises(MarketDataError, match=message.replace(".", r"\.")):
        market_from_mapping(data)
