"""Black-76 on the forward with zero discounting (spec section 3), vectorised and broadcasting.

Every function takes floats or numpy arrays that broadcast together (``is_call`` a bool or a bool
array) and returns a float64 array of the broadcast shape (0-d for scalars). N is
``scipy.special.ndtr``, accurate in the tails. An option with T <= 0 or vol <= 0 is worth its
intrinsic value; its delta is then the intrinsic step (0.5 / -0.5 at the money) and its gamma and
vega are 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from engine.arrays import BoolArray, FloatArray

ArrayLike = npt.ArrayLike


def _d1_d2(
    forward: FloatArray, strike: FloatArray, vol: FloatArray, t: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """d1, d2, the std-dev and the 'live' mask (T > 0 and vol > 0); dead entries are 0."""
    live = (t > 0.0) & (vol > 0.0)
    sd = np.where(live, vol * np.sqrt(np.where(live, t, 1.0)), 1.0)
    with np.errstate(divide="ignore"):  # a zero forward is a valid (worthless call) limit
        d1 = np.where(live, (np.log(forward / strike) + 0.5 * sd * sd) / sd, 0.0)
    return (
        np.asarray(d1, dtype=np.float64),
        np.asarray(d1 - sd, dtype=np.float64),
        np.asarray(np.where(live, sd, 0.0), dtype=np.float64),
        np.asarray(live, dtype=np.bool_),
    )


def _arrays(*xs: ArrayLike) -> list[FloatArray]:
    """The inputs as float64 arrays broadcast to one shape."""
    return [np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(*xs)]


def price(
    forward: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Premium: call F N(d1) - K N(d2), put K N(-d2) - F N(-d1); intrinsic when T <= 0.

    Both as w (F N(w d1) - K N(w d2)) with w = +1 for a call, -1 for a put: the same operations
    (a sign flip is exact), with two normal CDFs per price instead of four.
    """
    f, k, v, tt = _arrays(forward, strike, vol, t)
    w = np.where(np.asarray(is_call, dtype=np.bool_), 1.0, -1.0)
    d1, d2, _, live = _d1_d2(f, k, v, tt)
    model = w * (f * ndtr(w * d1) - k * ndtr(w * d2))
    intrinsic = np.maximum(w * (f - k), 0.0)
    return np.asarray(np.where(live, model, intrinsic))


def delta(
    forward: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """dPremium/dF: N(d1) for a call, N(d1) - 1 for a put; the intrinsic step when T <= 0."""
    f, k, v, tt = _arrays(forward, strike, vol, t)
    call = np.asarray(is_call, dtype=np.bool_)
    d1, _, _, live = _d1_d2(f, k, v, tt)
    model = np.where(call, ndtr(d1), ndtr(d1) - 1.0)
    step = np.where(f > k, 1.0, np.where(f < k, 0.0, 0.5))
    return np.asarray(np.where(live, model, np.where(call, step, step - 1.0)))


def _density(x: FloatArray) -> FloatArray:
    """Standard normal density."""
    return np.asarray(np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi))


def gamma(forward: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: ArrayLike) -> FloatArray:
    """d2Premium/dF2 = n(d1) / (F sigma sqrt T), the same for calls and puts; 0 when T <= 0."""
    f, k, v, tt = _arrays(forward, strike, vol, t)
    d1, _, sd, live = _d1_d2(f, k, v, tt)
    return np.asarray(np.where(live, _density(d1) / (f * np.where(live, sd, 1.0)), 0.0))


def vega(forward: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: ArrayLike) -> FloatArray:
    """dPremium/dsigma = F n(d1) sqrt T (per unit of vol, not per vol point); 0 when T <= 0."""
    f, k, v, tt = _arrays(forward, strike, vol, t)
    d1, _, _, live = _d1_d2(f, k, v, tt)
    return np.asarray(np.where(live, f * _density(d1) * np.sqrt(np.maximum(tt, 0.0)), 0.0))
