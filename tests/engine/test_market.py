"""Market data: surface interpolation, depth curves, forwards, snapshots, and the JSON form (its
errors name the path of the bad field)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market import (
    AssetMarket,
    DepthCurve,
    MarketDataError,
    MarketSnapshot,
    UnderlyingMarket,
    VolSurface,
    market_from_mapping,
    market_to_mapping,
)
from engine.params import AssetClass
from tests.engine.market_fixtures import AS_OF, DEPTH, market

SURFACE = VolSurface(
    np.array([0.1, 0.5]), np.array([-0.2, 0.0, 0.2]), np.array([[0.8, 0.6, 0.7], [0.7, 0.5, 0.6]])
)


def test_surface_linear_in_k_and_flat_beyond() -> None:
    assert SURFACE.vol(0.1, -0.1) == pytest.approx(0.7)
    assert SURFACE.vol(0.1, 0.1) == pytest.approx(0.65)
    assert SURFACE.vol(0.1, -1.0) == pytest.approx(0.8)
    assert SURFACE.vol(0.1, 5.0) == pytest.approx(0.7)
    assert SURFACE.vol(0.5, 0.1) == pytest.approx(0.55)


def test_surface_linear_in_total_variance_between_expiries() -> None:
    t = 0.3
    var = 0.6**2 * 0.1 + (t - 0.1) / 0.4 * (0.5**2 * 0.5 - 0.6**2 * 0.1)
    assert SURFACE.vol(t, 0.0) == pytest.approx(math.sqrt(var / t))
    # off the k grid: each row is read at k first (0.65 and 0.55 at k = 0.1)
    var = 0.65**2 * 0.1 + (t - 0.1) / 0.4 * (0.55**2 * 0.5 - 0.65**2 * 0.1)
    assert SURFACE.vol(t, 0.1) == pytest.approx(math.sqrt(var / t))


def test_surface_flat_vol_beyond_the_expiry_grid() -> None:
    assert SURFACE.vol(0.01, 0.0) == pytest.approx(0.6)
    assert SURFACE.vol(0.0, 0.0) == pytest.approx(0.6)
    assert SURFACE.vol(-1.0, -0.1) == pytest.approx(0.7)
    assert SURFACE.vol(2.0, 0.0) == pytest.approx(0.5)


def test_surface_is_vectorised_with_broadcasting() -> None:
    got = SURFACE.vol(np.array([0.1, 0.5]), np.array([0.0, 0.0]))
    assert got.tolist() == pytest.approx([0.6, 0.5])
    grid = SURFACE.vol(np.array([[0.1], [0.3], [0.5]]), np.array([-0.3, 0.0, 0.1, 0.3]))
    assert grid.shape == (3, 4)
    for i, t in enumerate((0.1, 0.3, 0.5)):
        for j, k in enumerate((-0.3, 0.0, 0.1, 0.3)):
            assert grid[i, j] == pytest.approx(float(SURFACE.vol(t, k)), rel=1e-15)


def test_flat_and_single_row_surfaces() -> None:
    flat = VolSurface.flat(0.55)
    assert flat.vol(np.array([0.0, 0.01, 3.0]), np.array([-2.0, 0.0, 2.0])).tolist() == [0.55] * 3
    row = VolSurface(np.array([0.25]), np.array([-0.1, 0.1]), np.array([[0.5, 0.7]]))
    assert row.vol(np.array([0.01, 5.0]), 0.0).tolist() == pytest.approx([0.6, 0.6])


@settings(max_examples=100, deadline=None)
@given(t=st.floats(-1, 5), k=st.floats(-3, 3))
def test_surface_stays_within_its_grid_values(t: float, k: float) -> None:
    v = float(SURFACE.vol(t, k))
    assert 0.5 - 1e-12 <= v <= 0.8 + 1e-12


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (([0.5, 0.1], [0.0], [[0.5], [0.5]]), "expiries"),
        (([0.0, 0.1], [0.0], [[0.5], [0.5]]), "expiries"),
        (([0.1], [0.1, 0.0], [[0.5, 0.5]]), "log_moneyness"),
        (([0.1], [0.0, 0.1], [[0.5]]), "vols"),
        (([0.1], [0.0], [[-0.5]]), "vols"),
        (([0.1], [0.0], [[float("nan")]]), "vols"),
        (([], [0.0], [[]]), "expiries"),
    ],
)
def test_surface_validation_names_the_field(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(MarketDataError, match=f"^{field}:"):
        VolSurface(*(np.array(a) for a in args))


def test_arrays_are_private_read_only_copies() -> None:
    bid = np.array([1.0, 2.0])
    curve = DepthCurve(np.array([10.0, 20.0]), bid, bid)
    bid[0] = 99.0
    assert curve.bid[0] == 1.0
    with pytest.raises(ValueError):
        curve.bid[0] = 5.0
    with pytest.raises(ValueError):
        SURFACE.vols[0, 0] = 1.0


def test_depth_curve_validation_and_sides() -> None:
    with pytest.raises(MarketDataError, match=r"^bid:"):
        DepthCurve(np.array([10.0, 20.0]), np.array([2.0, 1.0]), np.array([1.0, 2.0]))
    with pytest.raises(MarketDataError, match=r"^ask:"):
        DepthCurve(np.array([10.0, 20.0]), np.array([1.0, 2.0]), np.array([-1.0, 2.0]))
    with pytest.raises(MarketDataError, match=r"^ask:"):
        DepthCurve(np.array([10.0, 20.0]), np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(MarketDataError, match=r"^bps:"):
        DepthCurve(np.array([20.0, 10.0]), np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    curve = DepthCurve(np.array([10.0, 20.0]), np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert curve.side(True).tolist() == [1.0, 2.0] and curve.side(False).tolist() == [3.0, 4.0]
    assert curve.scaled(0.5).ask.tolist() == [1.5, 2.0]


def test_underlying_forward_and_classes() -> None:
    u = UnderlyingMarket(100.0, "MAJOR", basis=0.05)  # type: ignore[arg-type]
    assert u.asset_class is AssetClass.MAJOR
    assert u.forward(np.array([-1.0, 0.0, 2.0])).tolist() == pytest.approx(
        [100.0, 100.0, 100.0 * math.exp(0.1)]
    )
    assert float(u.forward(0.5)) == pytest.approx(100.0 * math.exp(0.025))
    for bad, field in (
        (dict(mark=0.0), "mark"),
        (dict(mark=math.inf), "mark"),
        (dict(basis=math.nan), "basis"),
        (dict(ewma_vol=-0.1), "ewma_vol"),
        (dict(asset_class="gold"), "asset_class"),
    ):
        kwargs: dict[str, Any] = {"mark": 100.0, "asset_class": AssetClass.MAJOR, **bad}
        with pytest.raises(MarketDataError, match=f"^{field}:"):
            UnderlyingMarket(**kwargs)
    with pytest.raises(MarketDataError, match=r"^price:"):
        AssetMarket(-1.0, AssetClass.STABLECOIN)


def test_snapshot_prices_and_replacement() -> None:
    snap = market_from_mapping(market())
    assert snap.price_of_asset("USDC") == 1.0
    assert snap.price_of_asset("BTC") == 100_000.0  # not an asset: priced by its mark
    with pytest.raises(KeyError, match="DOGE"):
        snap.price_of_asset("DOGE")
    moved = snap.with_underlying("BTC", UnderlyingMarket(90_000.0, AssetClass.MAJOR))
    assert moved.price_of_asset("BTC") == 90_000.0 and snap.price_of_asset("BTC") == 100_000.0
    assert moved.underlyings["ETH"] is snap.underlyings["ETH"]
    with pytest.raises(MarketDataError, match=r"marks\.X"):
        MarketSnapshot(0.0, {}, {}, {"X": 0.0})
    with pytest.raises(MarketDataError, match="as_of"):
        MarketSnapshot(math.nan, {})


def test_mapping_reads_everything() -> None:
    depth = cast(dict[str, list[float]], DEPTH)
    data = market(depth=depth, marks={"BTC-PERPETUAL": 100_050.0})
    data["underlyings"]["SOL"] = {"mark": 200.0, "asset_class": "MID_CAP"}
    data["underlyings"]["ETH"]["ewma_vol"] = 0.8
    data["assets"]["WIF"] = {"price": 2.5}
    snap = market_from_mapping(data)
    assert snap.as_of == 1795507200.0  # 2026-11-24T08:00:00Z
    btc, sol = snap.underlyings["BTC"], snap.underlyings["SOL"]
    assert btc.vol_surface is not None and btc.depth is not None
    assert btc.depth.bid.tolist() == DEPTH["bid"]
    assert sol.asset_class is AssetClass.MID_CAP and sol.basis == 0.0 and sol.ewma_vol is None
    assert sol.vol_surface is None and sol.depth is None
    assert snap.underlyings["ETH"].ewma_vol == 0.8
    assert snap.assets["WIF"].asset_class is AssetClass.LONG_TAIL  # no class: most conservative
    assert snap.marks == {"BTC-PERPETUAL": 100_050.0}
    again = market_from_mapping(market_to_mapping(snap))
    assert market_to_mapping(again) == market_to_mapping(snap)


def test_times_with_and_without_zone() -> None:
    base = market_from_mapping({"as_of": AS_OF}).as_of
    assert market_from_mapping({"as_of": "2026-11-24T08:00:00"}).as_of == base
    assert market_from_mapping({"as_of": "2026-11-24T09:00:00+01:00"}).as_of == base
    assert market_from_mapping({"as_of": base}).as_of == base


Patch = Callable[[dict[str, Any]], object]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda m: m.pop("as_of"), "as_of"),
        (lambda m: m.update(as_of="yesterday"), "as_of"),
        (lambda m: m.update(underlyings=[1]), "underlyings"),
        (lambda m: m["underlyings"]["BTC"].update(mark=-1), "underlyings.BTC.mark"),
        (lambda m: m["underlyings"]["BTC"].pop("mark"), "underlyings.BTC.mark"),
        (lambda m: m["underlyings"]["BTC"].update(mark=float("nan")), "underlyings.BTC.mark"),
        (lambda m: m["underlyings"]["BTC"].update(mark=True), "underlyings.BTC.mark"),
        (lambda m: m["underlyings"]["BTC"].update(basis="x"), "underlyings.BTC.basis"),
        (lambda m: m["underlyings"]["BTC"].update(ewma_vol=0), "underlyings.BTC.ewma_vol"),
        (lambda m: m["underlyings"]["BTC"].update(ewmavol=0.5), "underlyings.BTC.ewmavol"),
        (
            lambda m: m["underlyings"]["BTC"]["vol_surface"].update(vols=[[0.5]]),
            "underlyings.BTC.vol_surface.vols",
        ),
        (
            lambda m: m["underlyings"]["BTC"]["vol_surface"].update(
                vols=[[0.7, 0.6, 0.65], [0.65, -0.6, 0.63]]
            ),
            "underlyings.BTC.vol_surface.vols: must be positive",
        ),
        (
            lambda m: m["underlyings"]["BTC"]["vol_surface"].pop("expiries"),
            "underlyings.BTC.vol_surface.expiries: missing",
        ),
        (
            lambda m: m["underlyings"]["BTC"]["vol_surface"].update(expiries=[0.5, 0.05]),
            "underlyings.BTC.vol_surface.expiries",
        ),
        (
            lambda m: m["underlyings"]["BTC"].update(depth={**DEPTH, "bid": [1, 0, 0, 0, 0, 0, 0]}),
            "underlyings.BTC.depth.bid",
        ),
        (
            lambda m: m["underlyings"]["BTC"].update(depth={"bps": [10], "bid": [1]}),
            "underlyings.BTC.depth.ask: missing",
        ),
        (
            lambda m: m["underlyings"]["ETH"].update(asset_class="gold"),
            "underlyings.ETH.asset_class",
        ),
        (lambda m: m["assets"]["USDC"].update(price=0), "assets.USDC.price"),
        (lambda m: m["assets"]["USDC"].update(asset_class=3), "assets.USDC.asset_class"),
        (lambda m: m.update(assets={"USDC": 1.0}), "assets.USDC"),
        (lambda m: m.update(marks={"BTC-PERPETUAL": "x"}), "marks.BTC-PERPETUAL"),
        (lambda m: m.update(extra=1), "extra: unknown field"),
    ],
)
def test_bad_market_names_the_field(patch: Patch, message: str) -> None:
    data = market()
    patch(data)
    with pytest.raises(MarketDataError, match="^" + message.replace(".", r"\.")):
        market_from_mapping(data)
