"""Contingencies (section 5): short options, net delta and basis between expiries.

Short options are netted per (expiry, strike) across calls and puts, in underlying units
(contracts x contract size); the basis part buckets linear exposure by expiry (perpetuals and coin
collateral in bucket 0) and charges the hedged notional min(longs, shorts) across buckets.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import FloatArray
from engine.params import ContingencyParams


def net_short_units(bucket_nets: FloatArray) -> FloatArray:
    """Sum over (expiry, strike) buckets of net short underlying units: [..., B] -> [...]."""
    return np.asarray(np.maximum(-bucket_nets, 0.0).sum(axis=-1))


def hedged_notional(bucket_nets: FloatArray) -> FloatArray:
    """min(sum of long bucket nets, sum of short bucket nets) in USD: [..., B] -> [...]."""
    longs = np.maximum(bucket_nets, 0.0).sum(axis=-1)
    shorts = np.maximum(-bucket_nets, 0.0).sum(axis=-1)
    return np.asarray(np.minimum(longs, shorts))


def contingency_parts(
    short_units: FloatArray,
    spot: FloatArray,
    net_delta: FloatArray,
    basis_hedged: FloatArray,
    rates: ContingencyParams,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The three contingencies [A, U]: short option, delta and basis."""
    short = rates.short_option * short_units * spot
    delta = rates.delta * np.abs(net_delta)
    basis = rates.basis * basis_hedged
    return np.asarray(short), np.asarray(delta), np.asarray(basis)
