"""A PMRM_2 portfolio arranged for margining: options as flat arrays with an expiry index, and
each expiry's market (forward portions, rate, discount, confidence), as PMRM_2 arranges them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.arrays import BoolArray, FloatArray, IntArray
from engine.derive.portfolio import OptionFeed, Portfolio
from engine.derive.shocks import discount_factor, forward_portions


class MissingFeedError(ValueError):
    """An option's expiry has no feed in the portfolio's ``OptionFeeds``."""


@dataclass(frozen=True)
class ExpiryBook:
    """Options (length n_o) and the expiries they fall in (length n_e), in PMRM_2's order:
    expiries as first seen, options of an expiry in reverse order of listing."""

    seconds: FloatArray
    forward_fixed: FloatArray
    forward_variable: FloatArray
    rate: FloatArray
    discount: FloatArray
    feed_confidence: FloatArray
    expiry_index: IntArray
    strike: FloatArray
    vol: FloatArray
    amount: FloatArray
    is_call: BoolArray

    @property
    def forward(self) -> FloatArray:
        """Each expiry's unshocked forward."""
        return self.forward_fixed + self.forward_variable

    @property
    def onehot(self) -> FloatArray:
        """(n_o, n_e) matrix summing option values into their expiry."""
        out = np.zeros((self.expiry_index.size, self.seconds.size))
        out[np.arange(self.expiry_index.size), self.expiry_index] = 1.0
        return out


def _expiry_order(portfolio: Portfolio) -> tuple[list[int], list[list[int]]]:
    """Expiries in order of first appearance and, for each, its options' positions (reversed)."""
    expiries: list[int] = []
    members: list[list[int]] = []
    for position, option in enumerate(portfolio.options):
        if option.expiry_s not in expiries:
            expiries.append(option.expiry_s)
            members.append([])
        members[expiries.index(option.expiry_s)].insert(0, position)
    return expiries, members


def _feed(portfolio: Portfolio, expiry_s: int) -> OptionFeed:
    """The feed of an expiry, or MissingFeedError."""
    for feed in portfolio.feeds:
        if feed.expiry_s == expiry_s:
            return feed
    raise MissingFeedError(f"no OptionFeeds entry with FeedExpiry {expiry_s}")


def arrange(portfolio: Portfolio) -> ExpiryBook:
    """The portfolio's options grouped by expiry with their feeds (a passed expiry has T = 0)."""
    expiries, members = _expiry_order(portfolio)
    feeds = [_feed(portfolio, e) for e in expiries]
    seconds = np.maximum(np.array(expiries, dtype=np.float64), 0.0)
    fixed, variable = forward_portions([f.forward for f in feeds], seconds)
    rate = np.array([f.rate for f in feeds], dtype=np.float64)
    order = [p for group in members for p in group]
    options = [portfolio.options[p] for p in order]
    index = [i for i, group in enumerate(members) for _ in group]
    return ExpiryBook(
        seconds=seconds,
        forward_fixed=fixed.reshape(-1),
        forward_variable=variable.reshape(-1),
        rate=rate,
        discount=discount_factor(rate, seconds).reshape(-1),
        feed_confidence=np.array(
            [min(f.forward_confidence, f.rate_confidence, f.vol_confidence) for f in feeds],
            dtype=np.float64,
        ),
        expiry_index=np.array(index, dtype=np.int64),
        strike=np.array([o.strike for o in options], dtype=np.float64),
        vol=np.array([o.vol for o in options], dtype=np.float64),
        amount=np.array([o.amount for o in options], dtype=np.float64),
        is_call=np.array([o.is_call for o in options], dtype=np.bool_),
    )
