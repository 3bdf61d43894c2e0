"""Random books (accounts of mixed instruments and collateral) and markets for the engine tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.market import MarketSnapshot, market_from_mapping
from engine.portfolio import Portfolio, Position
from tests.engine.market_fixtures import DEPTH, market, underlying

EXPIRIES = ("27DEC26", "26MAR27", "25JUN27")
MARKS = {"BTC": 100_000.0, "ETH": 4_000.0, "SOL": 200.0}


def random_market(rng: np.random.Generator) -> MarketSnapshot:
    """BTC, ETH and SOL with random marks, bases, vols, EWMA vols and depth."""
    factor = {"bps": 1.0, "bid": rng.uniform(0.05, 2), "ask": rng.uniform(0.05, 2)}
    depth = {k: [x * factor[k] for x in v] for k, v in DEPTH.items()}
    sol = underlying(
        MARKS["SOL"] * rng.uniform(0.8, 1.2),
        0.9,
        basis=0.03,
        depth=depth,
        ewma=1.1,
        asset_class="mid_cap",
    )
    data: dict[str, Any] = market(
        btc=MARKS["BTC"] * rng.uniform(0.8, 1.2),
        eth=MARKS["ETH"] * rng.uniform(0.8, 1.2),
        depth=depth,
        marks={"BTC-27DEC26": MARKS["BTC"] * rng.uniform(0.8, 1.2)},
        SOL=sol,
    )
    data["underlyings"]["BTC"]["ewma_vol"] = float(rng.uniform(0.3, 1.2))
    data["underlyings"]["ETH"]["basis"] = 0.05
    data["assets"]["USDT"] = {"price": float(rng.uniform(0.97, 1.0)), "asset_class": "stablecoin"}
    return market_from_mapping(data)


def random_instrument(rng: np.random.Generator) -> tuple[str, float]:
    """A random listed instrument name and a plausible price for it."""
    und = str(rng.choice(["BTC", "ETH", "SOL"]))
    mark = MARKS[und]
    kind = rng.integers(0, 5)
    expiry = str(rng.choice(EXPIRIES))
    if kind == 0:
        return f"{und}-PERPETUAL", mark
    if kind == 1:
        return f"{und}-PERPETUAL-INV", mark
    if kind == 2:
        return f"{und}-{expiry}" + ("-INV" if rng.random() < 0.3 else ""), mark
    strike = round(mark * float(rng.choice([0.6, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5])), 2)
    return f"{und}-{expiry}-{strike:g}-{rng.choice(['C', 'P'])}", mark * 0.05


def random_portfolio(rng: np.random.Generator, account: str, positions: int) -> Portfolio:
    """An account with a few random positions and collateral (sometimes borrowed)."""
    held: dict[str, Position] = {}
    for _ in range(positions):
        name, price = random_instrument(rng)
        qty = float(rng.normal(0, 3))
        if name.endswith("-INV"):
            qty *= 10_000
        held[name] = Position(name, qty, price * float(rng.uniform(0.8, 1.2)))
    collateral = {"USDC": float(rng.uniform(0, 5e5))}
    for asset in ("BTC", "ETH", "SOL", "USDT"):
        if rng.random() < 0.4:
            collateral[asset] = float(rng.normal(2, 3)) * (1 if asset != "USDT" else 10_000)
    return Portfolio(account, collateral, tuple(held.values()))
