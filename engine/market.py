"""Market data (spec section 2): marks, forwards, volatility surfaces, depth curves, snapshots.

A surface interpolates linearly in log-moneyness (flat beyond the grid) and linearly in total
variance sigma^2 T between expiries (flat vol beyond the expiry grid; T <= 0 reads the first
expiry). A depth curve gives, per side, the cumulative USD notional available within each bps level
of mid. A snapshot is everything the engine values against at one instant; the offline JSON form is
read by ``market_from_mapping`` and written by ``market_to_mapping``.

Arrays held by these frozen classes are private read-only copies, so a cached derivative (such as a
depth curve's slippage curves) can never go stale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from engine.arrays import FloatArray
from engine.checks import is_increasing
from engine.errors import EngineError
from engine.params import AssetClass
from engine.slippage import SlippageCurve

DEFAULT_ASSET_CLASS = AssetClass.LONG_TAIL
"""Class of an underlying or asset whose JSON form gives none: the most conservative haircut."""


class MarketDataError(EngineError, ValueError):
    """Market data that cannot be used; the message starts with the path of the field at fault."""


def _frozen(arr: FloatArray) -> FloatArray:
    """The array made read-only (it is already a private copy)."""
    arr.setflags(write=False)
    return arr


def _vector(values: Any, path: str, positive: bool = False) -> FloatArray:
    """A private, finite, non-empty 1-D float array (positive if asked), or an error."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise MarketDataError(f"{path}: must be a list of numbers") from None
    if arr.ndim != 1 or arr.size == 0:
        raise MarketDataError(f"{path}: must be a non-empty list of numbers")
    if not np.all(np.isfinite(arr)):
        raise MarketDataError(f"{path}: must be finite")
    if positive and np.any(arr <= 0):
        raise MarketDataError(f"{path}: must be positive")
    return _frozen(arr)


def _increasing(arr: FloatArray, path: str) -> None:
    """Strictly increasing, or an error naming the path."""
    if not is_increasing(arr):
        raise MarketDataError(f"{path}: must be strictly increasing")


@dataclass(frozen=True, eq=False)
class VolSurface:
    """Implied vols on a grid of expiries (years) x log-moneyness k = ln(K/F)."""

    expiries: FloatArray
    log_moneyness: FloatArray
    vols: FloatArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "expiries", _vector(self.expiries, "expiries", positive=True))
        object.__setattr__(self, "log_moneyness", _vector(self.log_moneyness, "log_moneyness"))
        _increasing(self.expiries, "expiries")
        _increasing(self.log_moneyness, "log_moneyness")
        try:
            vols = np.array(self.vols, dtype=np.float64)
        except (TypeError, ValueError):
            raise MarketDataError("vols: must be a rectangular grid of numbers") from None
        shape = (self.expiries.size, self.log_moneyness.size)
        if vols.shape != shape:
            raise MarketDataError(f"vols: want shape {shape} (expiries x log_moneyness)")
        if not np.all(np.isfinite(vols)) or np.any(vols <= 0):
            raise MarketDataError("vols: must be positive and finite")
        object.__setattr__(self, "vols", _frozen(vols))

    @classmethod
    def flat(cls, vol: float) -> VolSurface:
        """One vol everywhere (one expiry, one log-moneyness point)."""
        return cls(np.array([1.0]), np.array([0.0]), np.array([[vol]]))

    def _row_vols(self, k: FloatArray) -> FloatArray:
        """[E, n] vol of every expiry row at each k (linear in k, flat beyond the grid)."""
        ks = self.log_moneyness
        if ks.size == 1:
            return np.repeat(self.vols[:, :1], k.size, axis=1)
        pos = np.clip(np.searchsorted(ks, k, side="right") - 1, 0, ks.size - 2)
        w = np.clip((k - ks[pos]) / (ks[pos + 1] - ks[pos]), 0.0, 1.0)
        return np.asarray(self.vols[:, pos] * (1.0 - w) + self.vols[:, pos + 1] * w)

    def vol(self, t: FloatArray | float, k: FloatArray | float) -> FloatArray:
        """Vol at times t (years) and log-moneyness k, broadcast together; shape of the broadcast.

        Each expiry row is read linearly in k; between expiries the total variance sigma^2 T is
        linear in T; outside the expiry grid the nearest row's vol is used flat.
        """
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
        return np.asarray(vol.reshape(shape), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class DepthCurve:
    """Cumulative USD notional within each bps level of mid, per side (bid and ask)."""

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
        """The slippage curve of the side a trade hits (bid to sell), built once and cached."""
        key = "_bid_curve" if sell else "_ask_curve"
        cached: SlippageCurve | None = self.__dict__.get(key)
        if cached is None:
            cached = SlippageCurve.of(self.bps, self.side(sell))
            self.__dict__[key] = cached
        return cached

    def side(self, sell: bool) -> FloatArray:
        """The bid side when selling, the ask side when buying."""
        return self.bid if sell else self.ask

    def scaled(self, factor: float) -> DepthCurve:
        """The same curve with every notional times factor (a thinner or deeper book)."""
        return DepthCurve(self.bps, self.bid * factor, self.ask * factor)


def _asset_class(value: Any, path: str) -> AssetClass:
    """An AssetClass from its value in any case ('major', 'MAJOR'), or an error naming the path."""
    try:
        return AssetClass(str(value).lower())
    except ValueError:
        known = ", ".join(c.value for c in AssetClass)
        raise MarketDataError(f"{path}: {value!r} is not one of {known}") from None


def _finite(value: Any) -> bool:
    """A real number (not a bool) that is finite."""
    return (
        isinstance(value, int | float | np.floating | np.integer)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class UnderlyingMarket:
    """One underlying: mark, asset class, basis rate, EWMA vol, vol surface and book depth.

    ``asset_class`` accepts an AssetClass or its value in any case; it is stored as AssetClass.
    """

    mark: float
    asset_class: AssetClass
    basis: float = 0.0
    ewma_vol: float | None = None
    vol_surface: VolSurface | None = None
    depth: DepthCurve | None = None

    def __post_init__(self) -> None:
        if not (_finite(self.mark) and self.mark > 0):
            raise MarketDataError("mark: must be positive and finite")
        if not _finite(self.basis):
            raise MarketDataError("basis: must be finite")
        if self.ewma_vol is not None and not (_finite(self.ewma_vol) and self.ewma_vol > 0):
            raise MarketDataError("ewma_vol: must be positive and finite")
        if self.vol_surface is not None and not isinstance(self.vol_surface, VolSurface):
            raise MarketDataError("vol_surface: must be a VolSurface")
        if self.depth is not None and not isinstance(self.depth, DepthCurve):
            raise MarketDataError("depth: must be a DepthCurve")
        object.__setattr__(self, "asset_class", _asset_class(self.asset_class, "asset_class"))

    def forward(self, t: FloatArray | float) -> FloatArray:
        """F(T) = S exp(b T), T in years (a negative T counts as 0)."""
        tt = np.maximum(np.asarray(t, dtype=np.float64), 0.0)
        return np.asarray(self.mark * np.exp(self.basis * tt), dtype=np.float64)


@dataclass(frozen=True)
class AssetMarket:
    """A collateral asset's USD price and asset class (a string in any case is accepted)."""

    price: float
    asset_class: AssetClass

    def __post_init__(self) -> None:
        if not (_finite(self.price) and self.price > 0):
            raise MarketDataError("price: must be positive and finite")
        object.__setattr__(self, "asset_class", _asset_class(self.asset_class, "asset_class"))


@dataclass(frozen=True)
class MarketSnapshot:
    """Everything the engine values against at one instant (as_of in epoch seconds, UTC).

    ``marks`` are instruments' own mark prices (futures, perpetuals), by instrument name.
    """

    as_of: float
    underlyings: Mapping[str, UnderlyingMarket]
    assets: Mapping[str, AssetMarket] = field(default_factory=dict)
    marks: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _finite(self.as_of):
            raise MarketDataError("as_of: must be finite epoch seconds")
        for name, price in self.marks.items():
            if not (_finite(price) and price > 0):
                raise MarketDataError(f"marks.{name}: must be positive and finite")

    def with_underlying(self, name: str, market: UnderlyingMarket) -> MarketSnapshot:
        """A copy with one underlying replaced (or added)."""
        return replace(self, underlyings={**self.underlyings, name: market})

    def price_of_asset(self, asset: str) -> float:
        """USD price of an asset: its own price, else the mark of the underlying of that name."""
        if asset in self.assets:
            return self.assets[asset].price
        if asset in self.underlyings:
            return self.underlyings[asset].mark
        raise KeyError(f"asset {asset!r}: no price in the market data (not an asset or underlying)")


# --- the offline JSON form ---------------------------------------------------------------------

_TOP_KEYS = ("as_of", "underlyings", "assets", "marks")
_UNDERLYING_KEYS = ("mark", "asset_class", "basis", "ewma_vol", "vol_surface", "depth")
_ASSET_KEYS = ("price", "asset_class")
_SURFACE_KEYS = ("expiries", "log_moneyness", "vols")
_DEPTH_KEYS = ("bps", "bid", "ask")


def _parse_time(value: Any, path: str) -> float:
    """Epoch seconds from an ISO-8601 string (UTC when it has no zone) or a number."""
    if _finite(value):
        return float(value)
    if not isinstance(value, str):
        raise MarketDataError(f"{path}: must be an ISO-8601 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MarketDataError(f"{path}: {value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(value: Any, path: str, positive: bool = False) -> float:
    """A finite number (positive if asked), or an error naming the path."""
    if not _finite(value):
        raise MarketDataError(f"{path}: must be a finite number")
    if positive and value <= 0:
        raise MarketDataError(f"{path}: must be positive")
    return float(value)


def _object(value: Any, path: str, keys: Iterable[str] | None = None) -> Mapping[str, Any]:
    """A JSON object whose keys are among ``keys`` (when given), or an error naming the path.

    The empty path is the top level (called "market" when it is not an object).
    """
    if not isinstance(value, Mapping):
        raise MarketDataError(f"{path or 'market'}: must be an object")
    if keys is not None:
        allowed = set(keys)
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            known = ", ".join(sorted(allowed))
            raise MarketDataError(f"{where}: unknown field (known: {known})")
    return value


def _required(raw: Mapping[str, Any], key: str, path: str) -> Any:
    """raw[key], or an error saying the field is missing."""
    if raw.get(key) is None:
        raise MarketDataError(f"{path}.{key}: missing")
    return raw[key]


def _prefixed(path: str, build: Any, *args: Any) -> Any:
    """Call a constructor, prefixing the field path of its MarketDataError with ``path``."""
    try:
        return build(*args)
    except MarketDataError as exc:
        raise MarketDataError(f"{path}.{exc}") from None


def underlying_from_mapping(data: Any, path: str = "underlying") -> UnderlyingMarket:
    """One underlying's market from its JSON form (errors name ``path`` and the field)."""
    raw = _object(data, path, _UNDERLYING_KEYS)
    surface = depth = None
    if raw.get("vol_surface") is not None:
        p = f"{path}.vol_surface"
        s = _object(raw["vol_surface"], p, _SURFACE_KEYS)
        surface = _prefixed(p, VolSurface, *(_required(s, key, p) for key in _SURFACE_KEYS))
    if raw.get("depth") is not None:
        p = f"{path}.depth"
        d = _object(raw["depth"], p, _DEPTH_KEYS)
        depth = _prefixed(p, DepthCurve, *(_required(d, key, p) for key in _DEPTH_KEYS))
    ewma = raw.get("ewma_vol")
    market: UnderlyingMarket = _prefixed(
        path,
        UnderlyingMarket,
        _number(raw.get("mark"), f"{path}.mark", positive=True),
        _asset_class(raw.get("asset_class", DEFAULT_ASSET_CLASS), f"{path}.asset_class"),
        _number(raw.get("basis", 0.0), f"{path}.basis"),
        None if ewma is None else _number(ewma, f"{path}.ewma_vol", positive=True),
        surface,
        depth,
    )
    return market


def market_from_mapping(data: Mapping[str, Any]) -> MarketSnapshot:
    """A snapshot from the offline JSON form; a MarketDataError names the path of a bad field.

    Form: {"as_of": ISO-8601 (or epoch seconds), "underlyings": {U: {"mark", "asset_class",
    "basis", "ewma_vol", "vol_surface": {"expiries", "log_moneyness", "vols"}, "depth": {"bps",
    "bid", "ask"}}}, "assets": {A: {"price", "asset_class"}}, "marks": {instrument: price}}.
    Only as_of and each mark/price are required; asset_class (any case) defaults to long_tail;
    unknown keys are errors (a typo must not silently drop data).
    """
    raw = _object(data, "", _TOP_KEYS)
    if raw.get("as_of") is None:
        raise MarketDataError("as_of: missing (an ISO-8601 time)")
    as_of = _parse_time(raw["as_of"], "as_of")
    unds = {
        str(name): underlying_from_mapping(u, f"underlyings.{name}")
        for name, u in _object(raw.get("underlyings") or {}, "underlyings").items()
    }
    assets: dict[str, AssetMarket] = {}
    for name, a in _object(raw.get("assets") or {}, "assets").items():
        path = f"assets.{name}"
        obj = _object(a, path, _ASSET_KEYS)
        price = _number(obj.get("price"), f"{path}.price", positive=True)
        klass = _asset_class(obj.get("asset_class", DEFAULT_ASSET_CLASS), f"{path}.asset_class")
        assets[str(name)] = _prefixed(path, AssetMarket, price, klass)
    marks = {
        str(n): _number(p, f"marks.{n}", positive=True)
        for n, p in _object(raw.get("marks") or {}, "marks").items()
    }
    return MarketSnapshot(as_of, unds, assets, marks)


def market_to_mapping(snapshot: MarketSnapshot) -> dict[str, Any]:
    """The offline JSON form of a snapshot (inverse of market_from_mapping; as_of as a number)."""
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
