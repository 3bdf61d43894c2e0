"""The portfolios a backtest holds: the demo's five kinds, formed from the path, and fixed files.

The kinds follow the seeded exchange of the demo (streams/tools/exchange.py), about 100,000 USD of
notional each, spread over the path's underlyings (BTC half, ETH and SOL a quarter each, others
alike, renormalised):

- directional: perpetuals, long BTC and SOL, short ETH, 35% of the notional in USDC;
- covered_call: the coin held, a call 10% out of the money about 33 days out sold against it;
- market_maker: calls at 90%, 100% and 110% of spot and puts at 90% and 100%, delta-hedged with the
  perpetual at formation (Black-76 deltas at the step's vol), 60% in USDC;
- basis: long the dated future about 33 days out, short the inverse perpetual, 12% in USDC;
- overlevered: long perpetuals with 21% of the notional in USDC.

A kind is formed again (at the step's prices, same USD size) every ``roll_days`` and held in
between: its options never expire in its hands. A portfolio file is held as it is all along.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from engine import black76
from engine.backtest.markets import BASIS
from engine.instruments import InstrumentKind, format_expiry, parse_expiry, parse_instrument
from engine.portfolio import Portfolio, Position
from engine.volatility import DAY_SECONDS, DAYS_PER_YEAR

KINDS = ("directional", "covered_call", "market_maker", "basis", "overlevered")
WEIGHTS = {"BTC": 0.5, "ETH": 0.25, "SOL": 0.25}
NOTIONAL = 100_000.0
OPTION_DAYS = 33.0
ROLL_DAYS = 30.0
DIRECTION = {"ETH": -1.0}
"""The directional book's side per underlying (long elsewhere)."""
MM_BOOK = ((0.9, "C", -0.1), (1.0, "C", -0.3), (1.1, "C", 0.2), (0.9, "P", 0.2), (1.0, "P", -0.3))
"""The market maker's options: (strike / spot, type, coins per coin of its size)."""


@dataclass(frozen=True)
class Leg:
    """What a kind holds on one underlying, before it is named: spot, size in coins, time."""

    underlying: str
    spot: float
    coins: float
    vol: float
    as_of: float


@dataclass(frozen=True)
class PortfolioSpec:
    """A portfolio the backtest holds: a kind formed every ``roll_days``, or a fixed one."""

    name: str
    kind: str | None = None
    fixed: Portfolio | None = None
    roll_days: float | None = ROLL_DAYS

    def formed(
        self, account: str, spots: Mapping[str, float], vols: Mapping[str, float], as_of: float
    ) -> Portfolio:
        """The portfolio as held from a step (a fixed one under a new account name)."""
        if self.fixed is not None:
            return Portfolio(account, dict(self.fixed.collateral), self.fixed.positions)
        assert self.kind is not None
        return form_kind(self.kind, account, spots, vols, as_of)


def kind_specs(roll_days: float = ROLL_DAYS) -> list[PortfolioSpec]:
    """The five kinds."""
    return [PortfolioSpec(kind, kind=kind, roll_days=roll_days) for kind in KINDS]


def file_spec(portfolio: Portfolio) -> PortfolioSpec:
    """A portfolio file, held as it is."""
    return PortfolioSpec(portfolio.account, fixed=portfolio, roll_days=None)


def form_kind(
    kind: str, account: str, spots: Mapping[str, float], vols: Mapping[str, float], as_of: float
) -> Portfolio:
    """One of the five kinds at given spots and vols."""
    weights = {u: WEIGHTS.get(u, 0.25) for u in spots}
    total = sum(weights.values())
    positions: list[Position] = []
    collateral: dict[str, float] = {}
    for u, spot in spots.items():
        leg = Leg(u, spot, NOTIONAL * weights[u] / total / spot, vols[u], as_of)
        held, cash = BUILDERS[kind](leg)
        positions.extend(held)
        for asset, amount in cash.items():
            collateral[asset] = collateral.get(asset, 0.0) + amount
    return Portfolio(account, collateral, tuple(positions))


def _expiry(leg: Leg) -> tuple[str, float]:
    """The expiry token and time about OPTION_DAYS after the step (08:00 UTC that day)."""
    token = format_expiry(leg.as_of + OPTION_DAYS * DAY_SECONDS)
    return token, parse_expiry(token)


def strike_name(strike: float) -> str:
    """A strike as an instrument name writes it (three significant figures, no exponent)."""
    rounded = float(f"{strike:.3g}")
    return np.format_float_positional(rounded, trim="-")


Built = tuple[list[Position], dict[str, float]]


def _directional(leg: Leg) -> Built:
    """A perpetual on the underlying's side, 35% of its notional in USDC."""
    side = DIRECTION.get(leg.underlying, 1.0)
    perp = Position(f"{leg.underlying}-PERPETUAL", side * leg.coins, leg.spot)
    return [perp], {"USDC": 0.35 * leg.coins * leg.spot}


def _covered_call(leg: Leg) -> Built:
    """The coin held and a call 10% out of the money sold against it, 5% in USDC."""
    coins = leg.coins / 2.0
    token, _ = _expiry(leg)
    call = f"{leg.underlying}-{token}-{strike_name(1.1 * leg.spot)}-C"
    return [Position(call, -coins, 1.0)], {leg.underlying: coins, "USDC": 0.05 * coins * leg.spot}


def _market_maker(leg: Leg) -> Built:
    """The option book of MM_BOOK, delta-hedged with the perpetual, 60% in USDC."""
    coins = 0.8 * leg.coins
    token, expiry = _expiry(leg)
    t = (expiry - leg.as_of) / (DAYS_PER_YEAR * DAY_SECONDS)
    forward = leg.spot * np.exp(BASIS * t)
    positions, hedge = [], 0.0
    for ratio, cp, per_coin in MM_BOOK:
        strike = float(strike_name(ratio * leg.spot))
        qty = per_coin * coins
        name = f"{leg.underlying}-{token}-{strike_name(strike)}-{cp}"
        positions.append(Position(name, qty, 1.0))
        hedge -= qty * float(black76.delta(forward, strike, leg.vol, t, cp == "C"))
    positions.append(Position(f"{leg.underlying}-PERPETUAL", hedge, leg.spot))
    return positions, {"USDC": 0.6 * coins * leg.spot}


def _basis(leg: Leg) -> Built:
    """Long the dated future, short the inverse perpetual, 12% in USDC."""
    token, _ = _expiry(leg)
    future = Position(f"{leg.underlying}-{token}", leg.coins, leg.spot)
    short = Position(f"{leg.underlying}-PERPETUAL-INV", -leg.coins * leg.spot, leg.spot)
    return [future, short], {"USDC": 0.12 * leg.coins * leg.spot}


def _overlevered(leg: Leg) -> Built:
    """A long perpetual on 21% of its notional in USDC."""
    perp = Position(f"{leg.underlying}-PERPETUAL", leg.coins, leg.spot)
    return [perp], {"USDC": 0.21 * leg.coins * leg.spot}


BUILDERS: dict[str, Callable[[Leg], Built]] = {
    "directional": _directional,
    "covered_call": _covered_call,
    "market_maker": _market_maker,
    "basis": _basis,
    "overlevered": _overlevered,
}


def gross_coins(portfolio: Portfolio, underlyings: tuple[str, ...]) -> dict[str, float]:
    """Per underlying, the coins the portfolio's positions and coin collateral stand for, in
    absolute value (an inverse contract's USD notional at its entry): its gross notional is
    their sum at the prices of the moment."""
    out = {u: abs(portfolio.collateral.get(u, 0.0)) for u in underlyings}
    for p in portfolio.positions:
        inst = parse_instrument(p.instrument)
        if inst.underlying not in out:
            continue
        coins = abs(p.qty) / p.entry_price if inst.inverse else abs(p.qty) * inst.contract_size
        out[inst.underlying] += coins if inst.kind is not InstrumentKind.SPOT else 0.0
    return out
