"""Order execution against a simulated book, free of Kafka.

The simulator keeps its own view of the market from the same records the engine reads (oracle
quotes, depth, vol surfaces, instruments). A liquidation order trades at the instrument's price
moved by the average slippage of its notional on the side it hits (the depth curve of its
underlying, or of the coin it sells); when that price is past the order's limit, only the
largest quantity whose average price respects the limit trades (bisection: slippage grows with
size), and nothing if that is dust. The liquidation fee (a parameter) is charged on the fill.
An ADL order is two fills at the order's price: the counterparty's reduction and the bankrupt
account's opposite close. Each order executes once (by id); fill ids derive from order ids, so a
replay produces the same fills, which the engine drops as duplicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from engine import black76
from engine.instruments import Instrument, InstrumentError, InstrumentKind
from engine.market import DepthCurve
from engine.volatility import DAYS_PER_YEAR
from streams.accounts.subaccounts import split_row
from streams.market.state import MarketState
from streams.records import (
    AdlOrder,
    BookDepth,
    Fill,
    InstrumentRecord,
    LiquidationOrder,
    Liquidity,
    OraclePrice,
    Record,
    Side,
    VolSurfaceRecord,
)

YEAR_SECONDS = DAYS_PER_YEAR * 86400.0
BISECTION_STEPS = 40
DUST = 1e-6  # a fraction of the order below which nothing trades


@dataclass
class Execution:
    """What happened to one order: its fills and the quantity left unfilled."""

    order_id: str
    fills: list[Fill]
    unfilled: float


@dataclass
class MatchingEngine:
    """The simulated venue: a market view and the orders it has executed."""

    market: MarketState = field(default_factory=MarketState)
    executed: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    # ----- market view --------------------------------------------------------------------

    def on_market(self, record: Record, uid: str) -> None:
        """Follow a market record (quotes, depth, vols, instruments)."""
        if isinstance(record, OraclePrice):
            self.market.on_price(record, uid)
        elif isinstance(record, BookDepth):
            self.market.on_depth(record, uid)
        elif isinstance(record, VolSurfaceRecord):
            self.market.on_vol(record, uid)
        elif isinstance(record, InstrumentRecord):
            self.market.on_instrument(record, uid)

    def price(self, name: str) -> tuple[float, float, DepthCurve | None]:
        """Trade price of an instrument or coin, USD notional per unit, and its book."""
        market = self.market
        inst = _instrument(market, name)
        if inst is None or inst.kind is InstrumentKind.SPOT:
            mark = market.marks[name]
            return mark, mark, market.depth.get(name)
        mark = market.marks[inst.underlying]
        depth = market.depth.get(inst.underlying)
        t = max(((inst.expiry or 0.0) - market.as_of) / YEAR_SECONDS, 0.0)
        if inst.kind is InstrumentKind.OPTION:
            premium = _option_price(market, inst, mark, t)
            return premium, premium * inst.contract_size, depth
        if inst.inverse:
            return mark, 1.0, depth
        return mark, mark * inst.contract_size, depth

    # ----- execution ----------------------------------------------------------------------

    def execute_liquidation(self, order: LiquidationOrder, ts: datetime) -> Execution:
        """Fill a liquidation order within its limit, with price impact and the fee."""
        if order.order_id in self.executed:
            return Execution(order.order_id, [], 0.0)
        self.executed.add(order.order_id)
        price, unit, depth = self.price(order.instrument)
        sell = order.side is Side.SELL
        qty = self._within_limit(order.qty, price, unit, depth, sell, order.limit_price)
        if qty <= DUST * order.qty:
            self._count("unfilled")
            return Execution(order.order_id, [], order.qty)
        fill_price = self._impact_price(qty, price, unit, depth, sell)
        fee = self.market.params.liquidation.fee * qty * unit
        master, sub = split_row(order.account)
        fill = Fill(
            fill_id=f"fill-{order.order_id}",
            account=master,
            sub_account=sub,
            instrument=order.instrument,
            side=order.side,
            qty=qty,
            price=fill_price,
            fee=fee,
            liquidity=Liquidity.LIQUIDATION,
            order_id=order.order_id,
            ts=ts,
        )
        self._count("liquidation_fills")
        return Execution(order.order_id, [fill], order.qty - qty)

    def execute_adl(self, order: AdlOrder, ts: datetime) -> Execution:
        """The counterparty's reduction and the bankrupt account's close, at the ADL price."""
        if order.adl_id in self.executed:
            return Execution(order.adl_id, [], 0.0)
        self.executed.add(order.adl_id)
        fills = [
            Fill(
                fill_id=f"fill-{order.adl_id}-{n}",
                account=split_row(account)[0],
                sub_account=split_row(account)[1],
                instrument=order.instrument,
                side=side,
                qty=order.qty,
                price=order.price,
                fee=0.0,
                liquidity=Liquidity.ADL,
                order_id=order.adl_id,
                ts=ts,
            )
            for n, (account, side) in enumerate(
                [
                    (order.account, order.side),
                    (order.counterparty_account or "", _opposite(order.side)),
                ]
            )
            if account
        ]
        self._count("adl_fills", len(fills))
        return Execution(order.adl_id, fills, 0.0)

    def _within_limit(
        self,
        qty: float,
        price: float,
        unit: float,
        depth: DepthCurve | None,
        sell: bool,
        limit: float,
    ) -> float:
        """The largest quantity up to qty whose average fill price respects the limit."""

        def ok(q: float) -> bool:
            p = self._impact_price(q, price, unit, depth, sell)
            return p >= limit * (1 - 1e-12) if sell else p <= limit * (1 + 1e-12)

        if ok(qty):
            return qty
        lo, hi = 0.0, qty
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        return lo

    def _impact_price(
        self, qty: float, price: float, unit: float, depth: DepthCurve | None, sell: bool
    ) -> float:
        """Average fill price of qty: the price moved by the average slippage of its notional."""
        if depth is None or qty <= 0.0:
            return price
        beyond = self.market.params.haircuts.beyond_last_level_multiplier
        slip = float(depth.slippage(sell).average(qty * unit, beyond))
        return price * (1.0 - slip) if sell else price * (1.0 + slip)

    def _count(self, what: str, n: int = 1) -> None:
        """Count an execution outcome."""
        self.counts[what] = self.counts.get(what, 0) + n


def _instrument(market: MarketState, name: str) -> Instrument | None:
    """Reference data of a name, None for a bare coin."""
    try:
        return market.instruments.get(name)
    except InstrumentError:
        return None


def _option_price(market: MarketState, inst: Instrument, mark: float, t: float) -> float:
    """Black-76 premium per unit of underlying on the simulator's surface (intrinsic at T=0)."""
    strike = float(inst.strike or 0.0)
    surface = market.vols.get(inst.underlying)
    k = math.log(strike / mark)
    vol = float(surface.vol(t, k)) if surface is not None else 0.0
    return float(black76.price(mark, strike, vol, t, inst.is_call))


def _opposite(side: Side) -> Side:
    """The other side of a trade."""
    return Side.BUY if side is Side.SELL else Side.SELL


__all__ = ["Execution", "MatchingEngine"]
