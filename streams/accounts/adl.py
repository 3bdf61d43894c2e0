"""What ADL needs from an account partition: trade prices of positions and ranked candidates.

A position trades at its instrument's price: a future or perpetual at its own mark (else the
forward), an option at its Black-76 premium per unit of underlying, an inverse contract at the
coin's USD price. ``unit_value`` is the USD a position of one unit gains per 1 USD rise of that
price (the contract size; 1/price for inverse contracts quoted in USD notional), so that closing
q units at p instead of the price moves q x unit_value x (p - price) USD.

Candidates (margin-model.md section 10) are positions in profit ranked by profit ratio x effective
leverage: (unrealised PnL / collateral value) x (|notional| / E). Each partition publishes its
top ``adl_candidates_per_side`` per instrument and side; the fund's owner picks among them.
This runs at most once per ``adl_candidate_interval_s`` of event time, off the per-fill path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from engine.book import MarginBook
from engine.instruments import Instrument, InstrumentKind
from streams.accounts.outputs import Output
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.subaccounts import master_of
from streams.records import AdlCandidate
from streams.topics.catalog import Topic


@dataclass(frozen=True)
class TradePrice:
    """The price a position trades at and the USD value of one unit per 1 USD of that price."""

    price: float
    unit_value: float


@dataclass(frozen=True)
class Candidate:
    """A position ADL may reduce, with its rank score."""

    account: str
    instrument: str
    qty: float
    score: float


def trade_price(book: MarginBook, inst: Instrument) -> TradePrice:
    """The current trade price of an instrument held in the book."""
    ub = book.underlyings[inst.underlying]
    gid = book.instruments.resolve(inst.name)
    local = ub.ensure_instrument(gid, book.instruments, book.market)
    valuation = ub.valuation
    assert valuation is not None, f"{inst.underlying} has no valuation yet"
    if inst.kind is InstrumentKind.OPTION:
        return TradePrice(float(valuation.value[local]) / inst.contract_size, inst.contract_size)
    price = float(valuation.forward[local])
    if inst.inverse:
        return TradePrice(price, 1.0 / price)
    return TradePrice(price, inst.contract_size)


def unrealised(inst: Instrument, qty: float, entry: float, now: TradePrice) -> float:
    """USD unrealised PnL of a position at the trade price (inverse PnL converted at it)."""
    if inst.inverse:
        return qty * (1.0 / entry - 1.0 / now.price) * now.price
    return qty * (now.price - entry) * now.unit_value


def notional(inst: Instrument, qty: float, now: TradePrice) -> float:
    """Absolute USD notional of a position (premium notional for options)."""
    if inst.inverse:
        return abs(qty)
    return abs(qty) * now.price * now.unit_value


def rank_candidates(
    records: Mapping[str, PortfolioRecord],
    book: MarginBook,
    equity: Mapping[str, float],
    collateral_value: Mapping[str, float],
    per_side: int,
) -> list[Candidate]:
    """The top ``per_side`` profitable positions per instrument and side, best first."""
    prices: dict[str, TradePrice] = {}
    ranked: dict[tuple[str, bool], list[Candidate]] = {}
    for account, record in records.items():
        e, c = equity.get(account, 0.0), collateral_value.get(account, 0.0)
        if e <= 0.0 or c <= 0.0:
            continue
        for name, pos in record.positions.items():
            inst = book.instrument(name)
            now = prices.get(name) or prices.setdefault(name, trade_price(book, inst))
            pnl = unrealised(inst, pos.qty, pos.entry, now)
            if pnl <= 0.0:
                continue
            score = (pnl / c) * (notional(inst, pos.qty, now) / e)
            ranked.setdefault((name, pos.qty > 0), []).append(
                Candidate(account, name, pos.qty, score)
            )
    return [c for group in ranked.values() for c in _top(group, per_side)]


def _top(group: Iterable[Candidate], n: int) -> list[Candidate]:
    """The n best of a group by score (ties by account, for determinism)."""
    return sorted(group, key=lambda c: (-c.score, c.account))[:n]


def partition_candidates(
    records: Mapping[str, PortfolioRecord], book: MarginBook, per_side: int
) -> list[Candidate]:
    """The ranked candidates among accounts the book values: their equity and collateral value
    from the book in one vectorised pass each, then ``rank_candidates``."""
    index = np.array([book.account_index[a] for a in records], dtype=np.int64)
    equity = book.margin(list(records)).equity
    collateral = book.collateral_value(index)
    return rank_candidates(
        records,
        book,
        dict(zip(records, equity.tolist(), strict=True)),
        dict(zip(records, collateral.tolist(), strict=True)),
        per_side,
    )


def candidate_outputs(
    records: Mapping[str, PortfolioRecord],
    book: MarginBook,
    per_side: int,
    partition: int,
    ts: datetime,
) -> list[Output]:
    """A partition's ranked candidates as records for the fund's owner (on the claims topic,
    keyed by each one's master)."""
    return [
        Output(
            Topic.INSURANCE_CLAIMS,
            master_of(c.account),
            AdlCandidate(
                account=c.account,
                instrument=c.instrument,
                qty=c.qty,
                rank_score=c.score,
                partition=partition,
                ts=ts,
            ),
        )
        for c in partition_candidates(records, book, per_side)
    ]
