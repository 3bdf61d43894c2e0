"""The exception tests of a backtest: Kupiec's proportion of failures, Christoffersen's
independence, and the Basel traffic-light zones.

- Kupiec (1995): LR_pof = -2 ln[(1-p)^(N-x) p^x / ((1-x/N)^(N-x) (x/N)^x)], chi-square with one
  degree of freedom under a model whose exceptions come with probability p = 1 - coverage.
- Christoffersen (1998): LR_ind compares a first-order Markov chain of exceptions (pi_01, pi_11)
  with independence (pi); chi-square, one degree of freedom. Clustered exceptions fail it.
- Basel (1996): green while the binomial probability of at most x exceptions stays below 95%,
  red from 99.99%, yellow between: 0-4, 5-9 and 10 or more in 250 days at 99%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy
from scipy.stats import binom, chi2

from engine.arrays import BoolArray

GREEN_BELOW = 0.95
RED_FROM = 0.9999


@dataclass(frozen=True)
class TestResult:
    """A likelihood-ratio statistic and its p-value."""

    statistic: float
    p_value: float


def kupiec_pof(exceptions: int, observations: int, coverage: float = 0.99) -> TestResult:
    """Kupiec's proportion-of-failures test of ``exceptions`` in ``observations``."""
    n, x, p = observations, exceptions, 1.0 - coverage
    if n <= 0:
        return TestResult(0.0, 1.0)
    rate = x / n
    null = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    fitted = xlogy(n - x, 1.0 - rate) + xlogy(x, rate)
    stat = max(-2.0 * (null - fitted), 0.0)
    return TestResult(float(stat), float(chi2.sf(stat, 1)))


def transitions(hits: BoolArray) -> tuple[int, int, int, int]:
    """Counts n00, n01, n10, n11 of consecutive (no exception / exception) pairs."""
    prev, nxt = hits[:-1].astype(np.int64), hits[1:].astype(np.int64)
    pair = 2 * prev + nxt
    counts = np.bincount(pair, minlength=4)
    return int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3])


def christoffersen(hits: BoolArray) -> TestResult:
    """Christoffersen's independence test of an exception sequence."""
    n00, n01, n10, n11 = transitions(np.asarray(hits, dtype=bool))
    total = n00 + n01 + n10 + n11
    if total == 0 or n01 + n11 == 0:
        return TestResult(0.0, 1.0)
    pi = (n01 + n11) / total
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    null = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    chain = xlogy(n00, 1 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1 - pi11) + xlogy(n11, pi11)
    stat = max(-2.0 * (null - chain), 0.0)
    return TestResult(float(stat), float(chi2.sf(stat, 1)))


def basel_zone(exceptions: int, observations: int, coverage: float = 0.99) -> str:
    """'green', 'yellow' or 'red' for ``exceptions`` in ``observations`` at ``coverage``."""
    if observations <= 0:
        return "green"
    cumulative = float(binom.cdf(exceptions, observations, 1.0 - coverage))
    if cumulative < GREEN_BELOW:
        return "green"
    return "red" if cumulative >= RED_FROM else "yellow"
