"""Small market and portfolio builders shared by the engine tests."""

from __future__ import annotations

from typing import Any

AS_OF = "2026-11-24T08:00:00Z"

DEPTH = {
    "bps": [10, 25, 50, 100, 200, 500, 1000],
    "bid": [2e6, 6e6, 15e6, 40e6, 90e6, 200e6, 350e6],
    "ask": [2e6, 6e6, 15e6, 40e6, 90e6, 200e6, 350e6],
}


def underlying(
    mark: float,
    vol: float = 0.6,
    basis: float = 0.0,
    depth: dict[str, list[float]] | None = None,
    ewma: float | None = None,
    asset_class: str = "major",
) -> dict[str, Any]:
    """One underlying's market: a flat-ish surface, optional depth."""
    data: dict[str, Any] = {
        "mark": mark,
        "asset_class": asset_class,
        "basis": basis,
        "vol_surface": {
            "expiries": [0.05, 0.5],
            "log_moneyness": [-0.5, 0.0, 0.5],
            "vols": [[vol + 0.1, vol, vol + 0.05], [vol + 0.05, vol, vol + 0.03]],
        },
    }
    if depth is not None:
        data["depth"] = depth
    if ewma is not None:
        data["ewma_vol"] = ewma
    return data


def market(
    btc: float = 100_000.0,
    eth: float = 4_000.0,
    depth: dict[str, list[float]] | None = None,
    assets: dict[str, Any] | None = None,
    marks: dict[str, float] | None = None,
    **extra: dict[str, Any],
) -> dict[str, Any]:
    """A market mapping with BTC and ETH (and any extra underlyings)."""
    unds = {"BTC": underlying(btc, 0.6, depth=depth), "ETH": underlying(eth, 0.7, depth=depth)}
    unds.update(extra)
    return {
        "as_of": AS_OF,
        "underlyings": unds,
        "assets": assets or {"USDC": {"price": 1.0, "asset_class": "stablecoin"}},
        "marks": marks or {},
    }


def portfolio(
    positions: list[tuple[str, float, float]], collateral: dict[str, float] | None = None
) -> dict[str, Any]:
    """A portfolio mapping."""
    return {
        "account": "acct",
        "collateral": collateral if collateral is not None else {"USDC": 1_000_000.0},
        "positions": [{"instrument": n, "qty": q, "entry_price": e} for n, q, e in positions],
    }
