"""Partial liquidation (section 9): the least, most risk-heavy closing that restores the target.

Greedy over slices. Candidates are, per position, a slice toward zero; per coin held, a slice sold
to USD; and per underlying (and for the whole book), a proportional slice of every position
together, so that hedged legs can be reduced as a pair. A slice is at most `slice_depth_fraction`
of the book depth within `slice_depth_bps` on the side it hits. Each candidate is priced on a
one-account book with the incremental update (P_u - slice x R_i) and scored by the gain in
E_mm - target x MM net of its slippage and the liquidation fee, per USD of notional; candidates
that raise MM (unhedging a leg) are never taken. The last slice is trimmed to what the target
needs. Orders carry a limit price: mark -/+ the slice's worst slippage, never past the bankruptcy
price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from engine.book import MarginBook
from engine.instruments import Instrument, InstrumentKind
from engine.market import DepthCurve
from engine.params import RiskParams

TRIM_STEPS = 30  # bisection steps to trim the last slice


@dataclass(frozen=True)
class LiquidationOrder:
    """One slice to execute: sell (qty < 0) or buy (qty > 0) `instrument` within `limit_price`."""

    account: str
    instrument: str
    qty: float
    limit_price: float
    notional: float
    fee: float
    sequence: int

    @property
    def side(self) -> str:
        """BUY or SELL."""
        return "BUY" if self.qty > 0 else "SELL"


@dataclass
class LiquidationPlan:
    """The orders and where they leave the account."""

    account: str
    orders: list[LiquidationOrder] = field(default_factory=list)
    equity_mm: float = 0.0
    mm: float = 0.0
    target_met: bool = False
    bankrupt: bool = False


@dataclass(frozen=True)
class _Leg:
    """Part of a candidate: change one position's quantity or one coin balance."""

    name: str
    dqty: float
    is_coin: bool


@dataclass
class _State:
    """A one-account what-if book with its positions, coins and cash."""

    book: MarginBook
    account: str
    positions: dict[str, tuple[float, float]]
    coins: dict[str, float]

    def margin(self) -> tuple[float, float, float]:
        """E, E_mm and MM now."""
        r = self.book.margin([self.account])
        return float(r.equity[0]), float(r.equity_mm[0]), float(r.mm[0])


class LiquidationPlanner:
    """Plans partial liquidations against a market and a parameter set."""

    def __init__(self, book: MarginBook) -> None:
        self.source = book
        self.params: RiskParams = book.params

    def plan(self, account: str) -> LiquidationPlan:
        """The orders that bring the account's E_mm back to target x MM, closing the least."""
        state = self._copy(account)
        equity, equity_mm, mm = state.margin()
        plan = LiquidationPlan(account, equity_mm=equity_mm, mm=mm)
        target = self.params.liquidation.target_ratio
        if equity < 0.0:
            plan.bankrupt = True
            return plan
        for _ in range(200):
            if equity_mm >= target * mm:
                plan.target_met = True
                break
            best = self._best(state, equity_mm - target * mm)
            if best is None:
                break
            legs, gain_slice = best
            legs = self._trim(state, legs, target) if gain_slice else legs
            equity, equity_mm, mm = self._apply(state, legs, plan)
        plan.equity_mm, plan.mm = equity_mm, mm
        plan.target_met = equity_mm >= target * mm
        return plan

    # ----- the what-if book -----------------------------------------------------------------

    def _copy(self, account: str) -> _State:
        """A one-account book holding a copy of the account."""
        src = self.source
        row = src.account_index[account]
        positions = {
            src.instruments.instruments[g].name: qe for g, qe in src.holdings[row].positions.items()
        }
        coins = {
            a: float(src.collateral[row, c])
            for a, c in src.asset_index.items()
            if src.collateral[row, c] != 0.0
        }
        book = MarginBook(self.params, src.market, src.instruments, src.psr_overrides)
        book.load_portfolio(account, [(n, q, e) for n, (q, e) in positions.items()], coins)
        return _State(book, account, dict(positions), dict(coins))

    def _candidates(self, state: _State) -> list[list[_Leg]]:
        """Single-position slices, coin sales, and proportional slices per underlying and whole."""
        out: list[list[_Leg]] = []
        by_underlying: dict[str, list[_Leg]] = {}
        for name, (qty, _) in state.positions.items():
            inst = state.book.instrument(name)
            size = self._slice_units(state, inst, qty)
            leg = _Leg(name, -np.sign(qty) * min(abs(qty), size), False)
            out.append([leg])
            by_underlying.setdefault(inst.underlying, []).append(leg)
        for asset, bal in state.coins.items():
            if bal > 0 and asset in state.book.market.underlyings:
                depth = state.book.market.underlyings[asset].depth
                units = self._depth_units(depth, True, state.book.market.price_of_asset(asset))
                out.append([_Leg(asset, -min(bal, units), True)])
        groups = [g for g in by_underlying.values() if len(g) > 1]
        if len(by_underlying) > 1:
            groups.append([leg for g in by_underlying.values() for leg in g])
        for group in groups:
            out.append(self._proportional(state, group))
        return out

    def _conversions(self, state: _State) -> list[list[_Leg]]:
        """Stablecoins sold to USD whole, once no position is left: they carry no risk to
        reduce, only their haircut, and their fee must not push an account with positions into
        bankruptcy; but an account left with a USD debt against USDC would otherwise stay below
        MM with nothing to close."""
        if state.positions:
            return []
        assets = state.book.market.assets
        settlement = self.params.settlement_currency
        return [
            [_Leg(asset, -bal, True)]
            for asset, bal in state.coins.items()
            if bal > 0 and asset in assets and asset != settlement
        ]

    def _proportional(self, state: _State, legs: list[_Leg]) -> list[_Leg]:
        """The same fraction of every position of a group: the smallest of their slice fractions."""
        fraction = min(abs(leg.dqty) / abs(state.positions[leg.name][0]) for leg in legs)
        return [_Leg(leg.name, -state.positions[leg.name][0] * fraction, False) for leg in legs]

    def _slice_units(self, state: _State, inst: Instrument, qty: float) -> float:
        """Largest slice of a position: a fraction of the depth within the slice bps."""
        market = state.book.market.underlyings.get(inst.underlying)
        depth = market.depth if market else None
        unit = self._unit_notional(state, inst)
        return self._depth_units(depth, qty > 0, unit)

    def _depth_units(self, depth: DepthCurve | None, sell: bool, unit_notional: float) -> float:
        """Units tradable in one slice: fraction x depth within the slice bps, per unit notional."""
        if depth is None or unit_notional <= 0:
            return float("inf")
        lp = self.params.liquidation
        notional = float(np.interp(lp.slice_depth_bps, depth.bps, depth.side(sell)))
        return max(lp.slice_depth_fraction * notional / unit_notional, 1e-12)

    def _unit_notional(self, state: _State, inst: Instrument) -> float:
        """USD notional of one unit of quantity (a contract, or 1 USD for inverse)."""
        if inst.inverse:
            return 1.0
        mark = state.book.market.underlyings[inst.underlying].mark
        return inst.contract_size * mark

    # ----- scoring and applying -----------------------------------------------------------

    def _best(self, state: _State, gap: float) -> tuple[list[_Leg], bool] | None:
        """The candidate with the largest gain per USD of notional, or None when none helps."""
        _, equity_mm, mm = state.margin()
        target = self.params.liquidation.target_ratio
        best, best_score = None, 0.0
        for candidates in (self._candidates, self._conversions):
            for legs in candidates(state):
                after = self._what_if(state, legs)
                if after is None:
                    continue
                e_mm, new_mm, notional = after
                if new_mm > mm + 1e-9 or notional <= 0:
                    continue
                gain = (e_mm - target * new_mm) - (equity_mm - target * mm)
                if gain > 1e-9 and gain / notional > best_score:
                    best, best_score = legs, gain / notional
            if best is not None:
                break
        if best is None:
            return None
        e_mm, new_mm, _ = self._what_if(state, best) or (0.0, 0.0, 0.0)
        return best, e_mm >= target * new_mm

    def _what_if(self, state: _State, legs: list[_Leg]) -> tuple[float, float, float] | None:
        """E_mm, MM and traded notional after the legs (the book is restored after)."""
        positions, coins = dict(state.positions), dict(state.coins)
        notional = self._execute(state, legs, record=None)
        _, e_mm, mm = state.margin()
        self._restore(state, positions, coins)
        return e_mm, mm, notional

    def _restore(
        self, state: _State, positions: dict[str, tuple[float, float]], coins: dict[str, float]
    ) -> None:
        """Put the what-if book back to saved positions and coins."""
        for name in set(state.positions) | set(positions):
            if state.positions.get(name) != positions.get(name):
                qty, entry = positions.get(name, (0.0, 1.0))
                state.book.set_position(state.account, name, qty, entry)
        for asset in set(state.coins) | set(coins):
            if state.coins.get(asset, 0.0) != coins.get(asset, 0.0):
                state.book.set_collateral(state.account, asset, coins.get(asset, 0.0))
        state.positions, state.coins = positions, coins

    def _trim(self, state: _State, legs: list[_Leg], target: float) -> list[_Leg]:
        """The smallest fraction of a slice that still meets the target (bisection)."""
        lo, hi = 0.0, 1.0
        for _ in range(TRIM_STEPS):
            mid = (lo + hi) / 2
            scaled = [_Leg(x.name, x.dqty * mid, x.is_coin) for x in legs]
            result = self._what_if(state, scaled)
            if result is not None and result[0] >= target * result[1]:
                hi = mid
            else:
                lo = mid
        return [_Leg(x.name, x.dqty * hi, x.is_coin) for x in legs]

    def _apply(
        self, state: _State, legs: list[_Leg], plan: LiquidationPlan
    ) -> tuple[float, float, float]:
        """Execute the legs on the what-if book and record their orders."""
        self._execute(state, legs, record=plan)
        return state.margin()

    def _execute(self, state: _State, legs: list[_Leg], record: LiquidationPlan | None) -> float:
        """Trade the legs at mark: positions and coins change, cash moves; fee and slippage paid.

        Returns the USD notional traded."""
        book, total = state.book, 0.0
        settlement = self.params.settlement_currency
        cash = 0.0
        for leg in legs:
            price, unit = self._price_and_unit(state, leg)
            notional = abs(leg.dqty) * unit
            cost = self._slippage(state, leg, notional) + self.params.liquidation.fee * notional
            value_change = self._trade(state, leg, price)
            cash += value_change - cost
            total += notional
            if record is not None:
                record.orders.append(self._order(state, leg, price, notional, len(record.orders)))
        balance = state.coins.get(settlement, 0.0) + cash
        state.coins[settlement] = balance
        book.set_collateral(state.account, settlement, balance)
        return total

    def _price_and_unit(self, state: _State, leg: _Leg) -> tuple[float, float]:
        """Mark price of what a leg trades and the USD notional of one unit of it."""
        market = state.book.market
        if leg.is_coin:
            price = market.price_of_asset(leg.name)
            return price, price
        inst = state.book.instrument(leg.name)
        und = market.underlyings[inst.underlying]
        return und.mark, self._unit_notional(state, inst)

    def _trade(self, state: _State, leg: _Leg, price: float) -> float:
        """Change the position or coin; return the cash that keeps equity unchanged at mark."""
        book = state.book
        if leg.is_coin:
            bal = state.coins.get(leg.name, 0.0) + leg.dqty
            state.coins[leg.name] = bal
            book.set_collateral(state.account, leg.name, bal)
            return -leg.dqty * price
        before = self._position_value(state)
        qty, entry = state.positions[leg.name]
        new_qty = qty + leg.dqty
        if abs(new_qty) < 1e-12:
            new_qty = 0.0
            state.positions.pop(leg.name)
        else:
            state.positions[leg.name] = (new_qty, entry)
        book.set_position(state.account, leg.name, new_qty, entry)
        return before - self._position_value(state)

    def _position_value(self, state: _State) -> float:
        """Equity from positions (value minus cost basis) of the what-if account."""
        row = state.book.account_index[state.account]
        value = sum(float(b.value[row]) for b in state.book.underlyings.values())
        return value - float(state.book.cost[row])

    def _slippage(self, state: _State, leg: _Leg, notional: float) -> float:
        """USD slippage of trading a leg's notional on its book side."""
        depth = self._depth_for(state, leg)
        if depth is None or notional <= 0:
            return 0.0
        sell = leg.dqty < 0
        beyond = self.params.haircuts.beyond_last_level_multiplier
        return float(depth.slippage(sell).average(notional, beyond)) * notional

    def _depth_for(self, state: _State, leg: _Leg) -> DepthCurve | None:
        """The book a leg trades on."""
        name = leg.name if leg.is_coin else state.book.instrument(leg.name).underlying
        und = state.book.market.underlyings.get(name)
        return und.depth if und else None

    def _order(
        self, state: _State, leg: _Leg, price: float, notional: float, sequence: int
    ) -> LiquidationOrder:
        """The order of a leg with its limit price bounded by the bankruptcy price."""
        depth = self._depth_for(state, leg)
        worst_bps = self.params.liquidation.slice_depth_bps
        if depth is not None and notional > 0:
            side = depth.side(leg.dqty < 0)
            worst_bps = float(np.interp(notional, side, depth.bps, right=depth.bps[-1]))
        sign = -1.0 if leg.dqty < 0 else 1.0
        limit = price * (1.0 + sign * worst_bps / 1e4)
        bankruptcy = self._bankruptcy_price(state, leg, price)
        limit = max(limit, bankruptcy) if sign < 0 else min(limit, bankruptcy)
        fee = self.params.liquidation.fee * notional
        return LiquidationOrder(state.account, leg.name, leg.dqty, limit, notional, fee, sequence)

    def _bankruptcy_price(self, state: _State, leg: _Leg, price: float) -> float:
        """The price at which trading the leg would take the account's equity to zero."""
        equity, _, _ = state.margin()
        _, unit = self._price_and_unit(state, leg)
        units = abs(leg.dqty) * unit / price
        if units <= 0:
            return price
        move = max(equity, 0.0) / units
        return price - move if leg.dqty < 0 else price + move


def plan_liquidations(
    book: MarginBook, accounts: Mapping[str, object] | list[str]
) -> list[LiquidationPlan]:
    """Plans for several accounts of a book."""
    planner = LiquidationPlanner(book)
    return [planner.plan(a) for a in accounts]


__all__ = [
    "InstrumentKind",
    "LiquidationOrder",
    "LiquidationPlan",
    "LiquidationPlanner",
    "plan_liquidations",
]
