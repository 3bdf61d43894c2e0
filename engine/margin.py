"""Margin results: the arrays of many accounts (``MarginReport``) and one account's view.

A report holds, for the accounts it covers, equity and haircut equities, IM and MM, the state, and
every component: per underlying (worst loss, directional and two-sided parts, contingencies,
liquidity add-on, net delta) and per collateral asset (balance, price, haircut rates and
deductions). ``account(i)`` turns one row into an ``AccountMargin``: the typed view the
margin-status record reads, whose ``to_dict()`` is the mapping `spma margin` prints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.arrays import FloatArray, IntArray
from engine.states import STATES, AccountState

UNDERLYING_FIELDS = (
    "worst_loss",
    "directional",
    "two_sided",
    "contingencies",
    "short_option",
    "delta",
    "basis",
    "liquidity_addon",
    "delta_notional",
)


@dataclass(frozen=True)
class UnderlyingComponents:
    """Per account and underlying [A, U] components of the requirement."""

    worst_loss: FloatArray
    directional: FloatArray
    two_sided: FloatArray
    contingencies: FloatArray
    short_option: FloatArray
    delta: FloatArray
    basis: FloatArray
    liquidity_addon: FloatArray
    delta_notional: FloatArray


@dataclass(frozen=True)
class CollateralComponents:
    """Per account and asset [A, C]: balances, prices [C], haircut rates and deductions."""

    balance: FloatArray
    price: FloatArray
    rate_mm: FloatArray
    rate_im: FloatArray
    deduction_mm: FloatArray
    deduction_im: FloatArray


@dataclass(frozen=True, slots=True)
class AccountMargin:
    """One account's margin in plain Python values: figures, state, the components of each
    underlying it is exposed to and the haircuts of each asset it holds or owes."""

    account: str
    state: str
    equity: float
    equity_mm: float
    equity_im: float
    im: float
    mm: float
    ratio_mm: float | None  # None when MM = 0 (JSON has no infinity)
    underlyings: dict[str, dict[str, float]]
    directional_total: float
    scenario_requirement: float
    es99: float
    var99: float
    risk_requirement: float
    liquidity_addon: float
    haircuts: dict[str, dict[str, float]]
    params_version: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping (the `spma margin` output), keys in field order, nested
        mappings copied."""
        return asdict(self)


@dataclass(frozen=True)
class MarginReport:
    """The margin of several accounts, as arrays over accounts."""

    accounts: list[str]
    underlyings: list[str]
    assets: list[str]
    equity: FloatArray
    equity_mm: FloatArray
    equity_im: FloatArray
    im: FloatArray
    mm: FloatArray
    ratio_mm: FloatArray
    state: IntArray
    directional_total: FloatArray
    scenario_requirement: FloatArray
    es99: FloatArray
    var99: FloatArray
    risk_requirement: FloatArray
    liquidity_addon: FloatArray
    per_underlying: UnderlyingComponents
    collateral: CollateralComponents
    params_version: str

    def __len__(self) -> int:
        return len(self.accounts)

    def states(self) -> list[AccountState]:
        """Each account's state."""
        return [STATES[int(c)] for c in self.state]

    def row(self, account: str) -> int:
        """Index of an account in this report."""
        return self.accounts.index(account)

    def account(self, i: int) -> AccountMargin:
        """One account's margin as plain Python values (``to_dict()``: the `spma margin` output)."""
        comps = self.per_underlying
        by_underlying = {
            u: {name: float(getattr(comps, name)[i, k]) for name in UNDERLYING_FIELDS}
            for k, u in enumerate(self.underlyings)
            if _exposed(comps, i, k)
        }
        return AccountMargin(  # positional: a third of the keyword form's cost
            self.accounts[i],
            STATES[int(self.state[i])].value,
            float(self.equity[i]),
            float(self.equity_mm[i]),
            float(self.equity_im[i]),
            float(self.im[i]),
            float(self.mm[i]),
            _finite_or_none(float(self.ratio_mm[i])),
            by_underlying,
            float(self.directional_total[i]),
            float(self.scenario_requirement[i]),
            float(self.es99[i]),
            float(self.var99[i]),
            float(self.risk_requirement[i]),
            float(self.liquidity_addon[i]),
            self._haircuts(i),
            self.params_version,
        )

    def _haircuts(self, i: int) -> dict[str, dict[str, float]]:
        """Per asset held or owed: balance, price, rates and deductions."""
        c = self.collateral
        return {
            asset: {
                "balance": float(c.balance[i, k]),
                "price": float(c.price[k]),
                "haircut": float(c.rate_mm[i, k]),
                "haircut_im": float(c.rate_im[i, k]),
                "deduction_mm": float(c.deduction_mm[i, k]),
                "deduction_im": float(c.deduction_im[i, k]),
            }
            for k, asset in enumerate(self.assets)
            if c.balance[i, k] != 0.0
        }


def _exposed(comps: UnderlyingComponents, i: int, k: int) -> bool:
    """True when an account has anything on an underlying worth reporting."""
    return bool(
        comps.worst_loss[i, k] != 0.0
        or comps.delta_notional[i, k] != 0.0
        or comps.contingencies[i, k] != 0.0
        or comps.two_sided[i, k] != 0.0
    )


def _finite_or_none(x: float) -> float | None:
    """JSON has no infinity: an infinite ratio (MM = 0) is null."""
    return x if math.isfinite(x) else None


def empty_components(accounts: int, underlyings: int) -> UnderlyingComponents:
    """All-zero components (for an empty book)."""
    zero = np.zeros((accounts, underlyings))
    return UnderlyingComponents(*(zero.copy() for _ in UNDERLYING_FIELDS))
