"""Discounted Black-76 as PMRM_2 prices options: the engine's Black-76 on the forward, times the
expiry's discount factor.

Derive's contract (Black76.sol) works in 18-decimal fixed point: a put from put-call parity
floored at 0, the standard call set to 1 once sigma sqrt(T) reaches 24 (where N(d2) < 1e-32), a
zero total vol taken as the intrinsic value, and a normal CDF by Hart's rational approximation
(double precision). Each agrees with the closed form far below the 1e-8 relative tolerance of
Derive's own cases (all of which it reproduces), so the engine's formula is reused as it is.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine import black76
from engine.arrays import FloatArray
from engine.derive.shocks import year_fraction


def option_prices(
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    vol: npt.ArrayLike,
    seconds: npt.ArrayLike,
    discount: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> FloatArray:
    """Discounted Black-76 premia per unit, broadcasting over all inputs."""
    undiscounted = black76.price(forward, strike, vol, year_fraction(seconds), is_call)
    return np.asarray(undiscounted * np.asarray(discount, dtype=np.float64))
