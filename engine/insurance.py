"""The insurance fund and auto-deleveraging (section 10), as pure accounting in integer cents.

The fund takes liquidation fees and pays bankrupt deficits; every change is an event with the
balance after it. What the fund cannot cover is closed by ADL: opposite-side positions in the
bankrupt account's instruments, ranked by profit ratio x effective leverage (unrealised PnL /
collateral x notional / equity), highest first, reduced at the bankruptcy price. Amounts are cents
so that deficits = payouts + ADL amounts holds exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class FundEventKind(StrEnum):
    """What changed the fund."""

    FEE = "FEE"
    PAYOUT = "PAYOUT"
    SHORTFALL = "SHORTFALL"


def to_cents(usd: float) -> int:
    """USD to integer cents, half away from zero."""
    return int(math.copysign(math.floor(abs(usd) * 100.0 + 0.5), usd))


MAX_CENTS = 2**53
"""The largest cents figure the fund takes: exact as a float and far inside a 64-bit long, so
that every sum of the ledger stays exact and encodable (larger ones are refused, not rounded)."""


def fits_cents(usd: float) -> bool:
    """True when a USD amount is finite and its cents are within ``MAX_CENTS``."""
    return math.isfinite(usd) and abs(usd) * 100.0 <= MAX_CENTS


def deficit_cents(usd: float) -> int:
    """A deficit in whole cents, rounded up: a payout covers it in full, so the account is
    not left a fraction of a cent below zero (bankrupt, with nothing the fund can pay)."""
    return max(math.ceil(usd * 100.0 - 1e-6), 0)


@dataclass(frozen=True)
class FundEvent:
    """One change of the fund: kind, amount (cents, >= 0), balance after (cents), account."""

    kind: FundEventKind
    amount_cents: int
    balance_after_cents: int
    account: str | None
    reference: str


@dataclass(frozen=True)
class ClaimResult:
    """How a deficit was settled: paid by the fund, and the shortfall left to ADL."""

    paid_cents: int
    shortfall_cents: int
    events: tuple[FundEvent, ...]


@dataclass
class InsuranceFund:
    """One fund per settlement currency; the balance never goes below zero."""

    currency: str = "USD"
    balance_cents: int = 0
    events: list[FundEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def fee(self, amount_usd: float, account: str, reference: str) -> FundEvent | None:
        """Take a liquidation fee (once per reference)."""
        amount = to_cents(amount_usd)
        if amount <= 0 or reference in self.seen:
            return None
        self.seen.add(reference)
        self.balance_cents += amount
        return self._event(FundEventKind.FEE, amount, account, reference)

    def claim(self, deficit_usd: float, account: str, reference: str) -> ClaimResult:
        """Cover a bankrupt deficit as far as the balance goes; the rest is a shortfall."""
        deficit = deficit_cents(deficit_usd)
        if deficit <= 0 or reference in self.seen:
            return ClaimResult(0, 0, ())
        self.seen.add(reference)
        paid = min(deficit, self.balance_cents)
        events: list[FundEvent] = []
        if paid > 0:
            self.balance_cents -= paid
            events.append(self._event(FundEventKind.PAYOUT, paid, account, reference))
        if deficit > paid:
            events.append(self._event(FundEventKind.SHORTFALL, deficit - paid, account, reference))
        return ClaimResult(paid, deficit - paid, tuple(events))

    def _event(
        self, kind: FundEventKind, amount: int, account: str | None, reference: str
    ) -> FundEvent:
        """Record an event with the balance after it."""
        event = FundEvent(kind, amount, self.balance_cents, account, reference)
        self.events.append(event)
        return event


@dataclass(frozen=True)
class AdlCandidate:
    """A position that may be deleveraged: signed qty, its unrealised PnL, the account's
    collateral and equity, and the position's notional."""

    account: str
    instrument: str
    qty: float
    unrealised_pnl: float
    collateral: float
    notional: float
    equity: float

    @property
    def score(self) -> float:
        """Profit ratio x effective leverage; losers and empty accounts rank last."""
        if self.collateral <= 0 or self.equity <= 0 or self.unrealised_pnl <= 0:
            return 0.0
        return (self.unrealised_pnl / self.collateral) * (abs(self.notional) / self.equity)


class RankedPosition(Protocol):
    """Anything ADL can rank and reduce: an account's signed position with its score."""

    @property
    def account(self) -> str: ...

    @property
    def instrument(self) -> str: ...

    @property
    def qty(self) -> float: ...

    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class AdlReduction:
    """An ADL reduction: account, instrument, signed qty change, price and USD amount (cents)."""

    account: str
    instrument: str
    qty: float
    price: float
    amount_cents: int


def plan_adl(
    shortfall_cents: int,
    bankrupt_qty: float,
    bankruptcy_price: float,
    candidates: Sequence[RankedPosition],
) -> list[AdlReduction]:
    """Reduce opposite-side positions, highest score first, until the bankrupt quantity is
    closed (with a zero shortfall, at the mark: amounts 0).

    Each reduction closes counterparty quantity at the bankruptcy price; the amount absorbed is
    the profit the counterparty forgoes, in proportion to the bankrupt position closed. The last
    reduction takes exactly the remainder, so the amounts sum to the shortfall to the cent.
    """
    opposite = [c for c in candidates if c.qty * bankrupt_qty < 0]
    ranked = sorted(opposite, key=lambda c: (-c.score, c.account))
    remaining_qty = abs(bankrupt_qty)
    remaining = shortfall_cents
    per_unit = shortfall_cents / max(abs(bankrupt_qty), 1e-12)
    out: list[AdlReduction] = []
    for cand in ranked:
        if remaining_qty <= 1e-12:
            break
        take = min(abs(cand.qty), remaining_qty)
        amount = (
            remaining if take >= remaining_qty - 1e-12 else min(remaining, round(take * per_unit))
        )
        remaining_qty -= take
        remaining -= amount
        sign = -1.0 if cand.qty > 0 else 1.0
        out.append(
            AdlReduction(cand.account, cand.instrument, sign * take, bankruptcy_price, amount)
        )
    if remaining > 0 and out:
        last = out[-1]
        out[-1] = AdlReduction(
            last.account, last.instrument, last.qty, last.price, last.amount_cents + remaining
        )
    return out
