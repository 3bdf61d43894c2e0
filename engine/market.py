"""Market data (section 2): marks, forwards, volatility surfaces, depth curves, snapshots.

A surface interpolates linearly in log-moneyness (flat beyond the grid) and linearly in total
variance between expiries (flat vol beyond). A depth curve gives, per side, the cumulative USD
notional available within each bps level of mid. A snapshot is everything the engine values
against at one instant; the offline JSON form is read by ``market_from_mapping``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.params import AssetClass
from engine.types import FloatArray

if TYPE_CHECKING:
    from engine.liquidity import SlippageCurve


class MarketDataError(ValueError):
    """Market data that cannot be used; the message names the field at fault."""


def _vector(values: Any, path: str, positive: bool = False) -> FloatArray:
    """A finite 1-D float array (non-empty), or an error naming the path."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise MarketDataError(f"{path}: must be a list of numbers") from None
    if arr.ndim != 1 or arr.size == 0:
        raise MarketDataError(f"{path}: must be a non-empty list of numbers")
    if not np.all(np.isfinite(arr)):
        raise MarketDataError(f"{path}: must be finite")
    if positive and np.any(arr <= 0):
        raise MarketDataError(f"{path}: must be positive")
    return arr


def _increasing(arr: FloatArray, path: str) -> None:
    """Strictly increasing, or an error."""
    if np.any(np.diff(arr) <= 0):
        raise MarketDataError(f"{path}: must be strictly increasing")


@dataclass(frozen=True, eq=False)
class VolSurface:
    """Implied vols on expiries (years) x log-moneyness k = ln(K/F)."""

    expiries: FloatArray
    log_moneyness: FloatArray
    vols: FloatArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "expiries", _vector(self.expiries, "expiries", positive=True))
        object.__setattr__(self, "log_moneyness", _vector(self.log_moneyness, "log_moneyness"))
        _increasing(self.expiries, "expiries")
        _increasing(self.log_moneyness, "log_moneyness")
        try:
            vols = np.asarray(self.vols, dtype=np.float64)
        except (TypeError, ValueError):
            raise MarketDataError("vols: must be a rectangular grid of numbers") from None
        shape = (self.expiries.size, self.log_moneyness.size)
        if vols.shape != shape:
            raise MarketDataError(f"vols: want shape {shape} (expiries x log_moneyness)")
        if not np.all(np.isfinite(vols)) or np.any(vols <= 0):
            raise MarketDataError("vols: must be positive and finite")
        object.__setattr__(self, "vols", vols)

    @classmethod
    def flat(cls, vol: float) -> VolSurface:
        """One vol everywhere."""
        return cls(np.array([1.0]), np.array([0.0]), np.array([[vol]]))

    def _row_vols(self, k: FloatArray) -> FloatArray:
        """[E, n] vol of every expiry row at each k (linear in k, flat beyond)."""
        ks = self.log_moneyness
        if ks.size == 1:
            return np.repeat(self.vols[:, :1], k.size, axis=1)
        pos = np.clip(np.searchsorted(ks, k, side="right") - 1, 0, ks.size - 2)
        w = np.clip((k - ks[pos]) / (ks[pos + 1] - ks[pos]), 0.0, 1.0)
        return np.asarray(self.vols[:, pos] * (1.0 - w) + self.vols[:, pos + 1] * w)

    def vol(self, t: FloatArray | float, k: FloatArray | float) -> FloatArray:
        """Vol at times t (years) and log-moneyness k (broadcast together)."""
        tt, kk = (np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(t, k))
        shape = tt.shape
        tt, kk = tt.ravel(), kk.ravel()
        rows = self._row_vols(kk)
        exps = self.expiries
        if exps.size == 1:
            return np.asarray(rows[0].reshape(shape), dtype=np.float64)
        n = np.arange(kk.size)
        clipped = np.clip(tt, exps[0], exps[-1])
        pos = np.clip(np.searchsorted(exps, clipped, side="right") - 1, 0, exps.size - 2)
        w = (clipped - exps[pos]) / (exps[pos + 1] - exps[pos])
        var0 = rows[pos, n] ** 2 * exps[pos]
        var1 = rows[pos + 1, n] ** 2 * exps[pos + 1]
        vol = np.sqrt((var0 + w * (var1 - var0)) / clipped)
        return np.asarray(vol.reshape(shape))


@dataclass(frozen=True, eq=False)
class DepthCurve:
    """Cumulative USD notional within each bps level of mid, per side."""

    bps: FloatArray
    bid: FloatArray
    ask: FloatArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "bps", _vector(self.bps, "bps", positive=True))
        _increasing(self.bps, "bps")
        for side in ("bid", "ask"):
            arr = _vector(getattr(self, side), side)
            if arr.size != self.bps.size:
                raise MarketDataError(f"{side}: want one cumulative notional per bps level")
            if np.any(arr < 0) or np.any(np.diff(arr) < 0):
                raise MarketDataError(f"{side}: must be non-negative and non-decreasing")
            object.__setattr__(self, side, arr)

    def slippage(self, sell: bool) -> SlippageCurve:
        """The slippage curve of the side a trade hits (bid to sell), built once."""
        key = "_bid_curve" if sell else "_ask_curve"
        cached = self.__dict__.get(key)
        if cached is None:
            from engine.liquidity import SlippageCurve

            cached = SlippageCurve.of(self.bps, self.side(sell))
            self.__dict__[key] = cached
        return cached

    def side(self, sell: bool) -> FloatArray:
        """The bid side when selling, the ask side when buying."""
        return self.bid if sell else self.ask

    def scaled(self, factor: float) -> DepthCurve:
        """The same curve with every notional times factor (a thinner or deeper book)."""
        return DepthCurve(self.bps, self.bid * factor, self.ask * factor)


@dataclass(frozen=True)
class UnderlyingMarket:
    """One underlying: mark, class, basis rate, EWMA vol, surface and book depth."""

    mark: float
    asset_class: AssetClass = AssetClass.MAJOR
    basis: float = 0.0
    ewma_vol: float | None = None
    vol_surface: VolSurface | None = None
    depth: DepthCurve | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mark) and self.mark > 0):
            raise MarketDataError("mark: must be positive and finite")
        if not math.isfinite(self.basis):
            raise MarketDataError("basis: must be finite")
        if self.ewma_vol is not None and not (math.isfinite(self.ewma_vol) and self.ewma_vol > 0):
            raise MarketDataError("ewma_vol: must be positive")
        object.__setattr__(self, "asset_class", _asset_class(self.asset_class, "asset_class"))

    def forward(self, t: FloatArray | float) -> FloatArray:
        """F(T) = S exp(b T), T in years (negative T counts as 0)."""
        return np.asarray(self.mark * np.exp(self.basis * np.maximum(t, 0.0)))


@dataclass(frozen=True)
class AssetMarket:
    """A collateral asset's USD price and class."""

    price: float
    asset_class: AssetClass

    def __post_init__(self) -> None:
        if not (math.isfinite(self.price) and self.price > 0):
            raise MarketDataError("price: must be positive and finite")
        object.__setattr__(self, "asset_class", _asset_class(self.asset_class, "asset_class"))


def _asset_class(value: Any, path: str) -> AssetClass:
    """An AssetClass from its name in any case."""
    try:
        return AssetClass(str(value).lower())
    except ValueError:
        known = ", ".join(c.value for c in AssetClass)
        raise MarketDataError(f"{path}: {value!r} is not one of {known}") from None


@dataclass(frozen=True)
class MarketSnapshot:
    """Everything the engine values against at one instant (as_of in epoch seconds, UTC)."""

    as_of: float
    underlyings: Mapping[str, UnderlyingMarket]
    assets: Mapping[str, AssetMarket] = field(default_factory=dict)
    marks: Mapping[str, float] = field(default_factory=dict)

    def with_underlying(self, name: str, market: UnderlyingMarket) -> MarketSnapshot:
        """A copy with one underlying replaced (or added)."""
        return replace(self, underlyings={**self.underlyings, name: market})

    def price_of_asset(self, asset: str) -> float:
        """USD price of an asset: its own price, else its underlying's mark."""
        if asset in self.assets:
            return self.assets[asset].price
        if asset in self.underlyings:
            return self.underlyings[asset].mark
        raise KeyError(f"asset {asset}: no price in the market data")


def _parse_time(value: Any, path: str) -> float:
    """Epoch seconds from an ISO-8601 string (UTC when no zone) or a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise MarketDataError(f"{path}: must be an ISO-8601 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MarketDataError(f"{path}: {value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(value: Any, path: str, positive: bool = False) -> float:
    """A finite number (positive if asked), or an error naming the path."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MarketDataError(f"{path}: must be a finite number")
    if positive and value <= 0:
        raise MarketDataError(f"{path}: must be positive")
    return float(value)


def _object(value: Any, path: str) -> Mapping[str, Any]:
    """A JSON object, or an error."""
    if not isinstance(value, Mapping):
        raise MarketDataError(f"{path}: must be an object")
    return value


def _prefixed(path: str, build: Any, *args: Any) -> Any:
    """Call a constructor, prefixing its errors with a path."""
    try:
        return build(*args)
    except MarketDataError as exc:
        raise MarketDataError(f"{path}.{exc}") from None


def underlying_from_mapping(data: Any, path: str = "underlying") -> UnderlyingMarket:
    """One underlying's market from its JSON form."""
    raw = _object(data, path)
    surface = depth = None
    if raw.get("vol_surface") is not None:
        s = _object(raw["vol_surface"], f"{path}.vol_surface")
        surface = _prefixed(
            f"{path}.vol_surface",
            VolSurface,
            s.get("expiries"),
            s.get("log_moneyness"),
            s.get("vols"),
        )
    if raw.get("depth") is not None:
        d = _object(raw["depth"], f"{path}.depth")
        depth = _prefixed(f"{path}.depth", DepthCurve, d.get("bps"), d.get("bid"), d.get("ask"))
    ewma = raw.get("ewma_vol")
    market: UnderlyingMarket = _prefixed(
        path,
        UnderlyingMarket,
        _number(raw.get("mark"), f"{path}.mark", positive=True),
        raw.get("asset_class", "major"),
        _number(raw.get("basis", 0.0), f"{path}.basis"),
        None if ewma is None else _number(ewma, f"{path}.ewma_vol", positive=True),
        surface,
        depth,
    )
    return market


def market_from_mapping(data: Any) -> MarketSnapshot:
    """A snapshot from the offline JSON format (see docs and `spma margin --help`)."""
    raw = _object(data, "market")
    if "as_of" not in raw:
        raise MarketDataError("as_of: missing (an ISO-8601 time)")
    as_of = _parse_time(raw["as_of"], "as_of")
    unds = {
        str(name): underlying_from_mapping(u, f"underlyings.{name}")
        for name, u in _object(raw.get("underlyings", {}), "underlyings").items()
    }
    assets = {}
    for name, a in _object(raw.get("assets", {}), "assets").items():
        obj = _object(a, f"assets.{name}")
        price = _number(obj.get("price"), f"assets.{name}.price", positive=True)
        assets[str(name)] = _prefixed(
            f"assets.{name}", AssetMarket, price, obj.get("asset_class", "long_tail")
        )
    marks = {
        str(n): _number(p, f"marks.{n}", positive=True)
        for n, p in _object(raw.get("marks", {}), "marks").items()
    }
    return MarketSnapshot(as_of, unds, assets, marks)


def market_to_mapping(snapshot: MarketSnapshot) -> dict[str, Any]:
    """The offline JSON form of a snapshot (inverse of market_from_mapping)."""
    unds: dict[str, Any] = {}
    for name, u in snapshot.underlyings.items():
        entry: dict[str, Any] = {
            "mark": u.mark,
            "asset_class": u.asset_class.value,
            "basis": u.basis,
        }
        if u.ewma_vol is not None:
            entry["ewma_vol"] = u.ewma_vol
        if u.vol_surface is not None:
            entry["vol_surface"] = {
                "expiries": u.vol_surface.expiries.tolist(),
                "log_moneyness": u.vol_surface.log_moneyness.tolist(),
                "vols": u.vol_surface.vols.tolist(),
            }
        if u.depth is not None:
            entry["depth"] = {
                "bps": u.depth.bps.tolist(),
                "bid": u.depth.bid.tolist(),
                "ask": u.depth.ask.tolist(),
            }
        unds[name] = entry
    return {
        "as_of": snapshot.as_of,
        "underlyings": unds,
        "assets": {
            a: {"price": m.price, "asset_class": m.asset_class.value}
            for a, m in snapshot.assets.items()
        },
        "marks": dict(snapshot.marks),
    }
