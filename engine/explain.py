"""One account explained: its margin with what it is made of and what would restore it.

From a book row and its margin: the positions and collateral with their marks and values, each
underlying's components with its worst scenarios (the move, the price it gives, the vol state,
the weighted loss), the part of the requirement that binds, and what would restore the account:
the deposit in the settlement currency that reaches IM, and the smallest reduction the
liquidation planner would make (engine/liquidation.py; planned while the account is short of IM).
``Explanation.to_dict()`` is the shape `spma margin` prints and the account view serves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.book import MarginBook, cost_basis, exposure_units
from engine.haircuts import asset_class_of, haircut_rates
from engine.instruments import InstrumentKind
from engine.liquidation import LiquidationPlanner
from engine.margin import UNDERLYING_FIELDS, AccountMargin
from engine.scenarios import VOL_CODES
from engine.states import AccountState

WORST_SCENARIOS = 3
"""Worst scenarios shown per underlying."""
VOL_NAMES = {code: state.value for state, code in VOL_CODES.items()}
DEPOSIT_STEPS = 60  # bisection steps of the deposit that reaches IM (a relative 1e-18 of it)
PLANNED = {AccountState.MARGIN_CALL.value, AccountState.LIQUIDATION.value}
"""States in which the liquidation planner's reduction is worked out."""


@dataclass(frozen=True)
class Explanation:
    """An account's margin and its explanation, as plain values."""

    margin: AccountMargin
    components: list[dict[str, Any]]
    positions: list[dict[str, Any]]
    collateral: list[dict[str, Any]]
    binding: dict[str, Any]
    restore: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The explained account: figures, components (with worst scenarios), positions,
        collateral, the binding part and what restores it."""
        m = self.margin
        return {
            "account": m.account,
            "state": m.state,
            "equity": m.equity,
            "equity_mm": m.equity_mm,
            "equity_im": m.equity_im,
            "im": m.im,
            "mm": m.mm,
            "ratio_mm": m.ratio_mm,
            "directional_total": m.directional_total,
            "scenario_requirement": m.scenario_requirement,
            "es99": m.es99,
            "var99": m.var99,
            "risk_requirement": m.risk_requirement,
            "liquidity_addon": m.liquidity_addon,
            "params_version": m.params_version,
            "components": self.components,
            "positions": self.positions,
            "collateral": self.collateral,
            "binding": self.binding,
            "restore": self.restore,
        }


def explain(book: MarginBook, row_name: str, account: str, plan: bool = True) -> Explanation:
    """Explain the book's row `row_name` as `account` (``plan``: work out the planner's
    reduction when the account is short of IM)."""
    report = book.margin([row_name])
    margin = replace(report.account(0), account=account)
    row = book.account_index[row_name]
    components = [_component(book, row, u, c) for u, c in margin.underlyings.items()]
    return Explanation(
        margin,
        components,
        _positions(book, row),
        _collateral(margin),
        _binding(margin, components),
        _restore(book, row_name, margin, plan),
    )


def _component(book: MarginBook, row: int, name: str, comps: dict[str, float]) -> dict[str, Any]:
    """An underlying's components and its worst weighted scenarios (one a move: its worst vol
    state)."""
    ub = book.underlyings[name]
    grid = ub.grid
    loss = -ub.pnl[row] * grid.weights
    live = np.flatnonzero((grid.weights != 0.0) & (loss > 0.0))
    moves = grid.moves.tolist()
    worst: dict[float, int] = {}  # move -> its worst scenario, worst first
    for j in live[np.argsort(-loss[live], kind="stable")].tolist():
        worst.setdefault(moves[j], j)
        if len(worst) == WORST_SCENARIOS:
            break
    mark = float(book.market.underlyings[name].mark)
    scenarios = [
        {
            "move": float(grid.moves[j]),
            "price": mark * (1.0 + float(grid.moves[j])),
            "vol": VOL_NAMES[int(grid.vol_state[j])],
            "loss": float(loss[j]),
        }
        for j in worst.values()
    ]
    return {
        "underlying": name,
        **{k: comps[k] for k in UNDERLYING_FIELDS},
        "mark": mark,
        "worst_scenarios": scenarios,
    }


def _positions(book: MarginBook, row: int) -> list[dict[str, Any]]:
    """Each position with its mark (an option's premium per unit), value and PnL."""
    out = []
    for gid, (qty, entry) in book.holdings[row].positions.items():
        inst = book.instruments.instruments[gid]
        ub = book.underlyings[inst.underlying]
        val = ub.valuation
        assert val is not None
        local = ub.local[gid]
        units = exposure_units(inst, qty, entry)
        option = inst.kind is InstrumentKind.OPTION
        mark = float(val.value[local]) / inst.contract_size if option else float(val.forward[local])
        value = units * float(val.value[local])
        out.append(
            {
                "instrument": inst.name,
                "underlying": inst.underlying,
                "kind": inst.kind.value,
                "qty": float(qty),
                "entry": float(entry),
                "mark": mark,
                "value": value,
                "pnl": value - float(cost_basis(inst, qty, entry)),
                "delta": units * float(val.delta[local]),
            }
        )
    return sorted(out, key=lambda p: str(p["instrument"]))


def _collateral(margin: AccountMargin) -> list[dict[str, Any]]:
    """Each balance with its price, value, haircut rates and deductions."""
    return [
        {
            "asset": asset,
            "balance": h["balance"],
            "price": h["price"],
            "value": h["balance"] * h["price"],
            "haircut_mm": h["haircut"],
            "haircut_im": h["haircut_im"],
            "deduction_mm": h["deduction_mm"],
            "deduction_im": h["deduction_im"],
        }
        for asset, h in sorted(margin.haircuts.items())
    ]


def _binding(margin: AccountMargin, components: list[dict[str, Any]]) -> dict[str, Any]:
    """Which part of the requirement binds: the scenario requirement or ES_99, and the
    underlying with the largest worst loss (its worst scenario)."""
    part = "es99" if margin.es99 > margin.scenario_requirement else "scenario"
    top = max(components, key=lambda c: c["worst_loss"], default=None)
    return {
        "requirement": part,
        "risk_requirement": margin.risk_requirement,
        "liquidity_addon": margin.liquidity_addon,
        "underlying": top["underlying"] if top else None,
        "worst_scenario": top["worst_scenarios"][0] if top and top["worst_scenarios"] else None,
    }


def _restore(book: MarginBook, row_name: str, margin: AccountMargin, plan: bool) -> dict[str, Any]:
    """The deposit that reaches IM and the liquidation planner's reduction."""
    settlement = book.params.settlement_currency
    reduction: dict[str, Any] | None = None
    if plan and margin.state in PLANNED:
        planned = LiquidationPlanner(book).plan(row_name)
        reduction = {
            "orders": [
                {
                    "instrument": o.instrument,
                    "side": o.side,
                    "qty": float(o.qty),
                    "limit_price": float(o.limit_price),
                    "notional": float(o.notional),
                    "fee": float(o.fee),
                }
                for o in planned.orders
            ],
            "target_met": planned.target_met,
            "equity_mm_after": float(planned.equity_mm),
            "mm_after": float(planned.mm),
        }
    return {
        "deposit_to_im": {"asset": settlement, "amount": deposit_to_im(book, row_name, margin)},
        "liquidation": reduction,
    }


def deposit_to_im(book: MarginBook, row_name: str, margin: AccountMargin) -> float | None:
    """The settlement-currency deposit that brings E_im up to IM (0 when it is there; None
    when the currency's haircut takes all of it): equity_im rises by d x price less the change
    of the balance's deduction, solved by bisection (IM does not depend on the currency)."""
    gap = margin.im - margin.equity_im
    if gap <= 0.0:
        return 0.0
    asset = book.params.settlement_currency
    price = book.price_of(asset)
    col = book.asset_index.get(asset)
    balance = 0.0 if col is None else float(book.collateral[book.account_index[row_name], col])
    given = book.market.assets.get(asset)
    und = book.market.underlyings.get(asset)
    klass = asset_class_of(
        asset, book.params, given.asset_class if given else (und.asset_class if und else None)
    )
    depth = und.depth if und is not None else None

    def gain(d: float) -> float:
        """E_im's rise after depositing d."""
        b = np.array([balance, balance + d])
        _, h_im = haircut_rates(b, price, klass, depth, book.params.haircuts)
        return d * price - float(np.abs(b) @ (h_im * [-1.0, 1.0])) * price

    hi = gap / price
    while gain(hi) < gap:
        hi *= 2.0
        if hi > 1e18:
            return None
    lo = 0.0
    for _ in range(DEPOSIT_STEPS):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if gain(mid) < gap else (lo, mid)
    return hi


__all__ = ["Explanation", "deposit_to_im", "explain"]
