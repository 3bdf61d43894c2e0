"""Black-76 against QuantLib's Black formula and calculator on thousands of random inputs, plus
parity, the expired/zero-vol limits, broadcasting and hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import black76

N = 3000


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    """Random forwards, strikes, vols, expiries and types (seeded)."""
    rng = np.random.default_rng(7)
    f = rng.uniform(100.0, 200_000.0, N)
    return {
        "f": f,
        "k": f * rng.uniform(0.3, 3.0, N),
        "vol": rng.uniform(0.05, 3.0, N),
        "t": rng.uniform(1 / 365, 3.0, N),
        "call": rng.random(N) < 0.5,
    }


@pytest.fixture(scope="module")
def quantlib(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """QuantLib's price, delta, gamma and vega of every input (discount 1, stdDev vol sqrt T)."""
    out = {name: np.empty(N) for name in ("price", "delta", "gamma", "vega")}
    for i in range(N):
        f, k, vol, t = (float(inputs[x][i]) for x in ("f", "k", "vol", "t"))
        opt = ql.Option.Call if inputs["call"][i] else ql.Option.Put
        sd = vol * math.sqrt(t)
        out["price"][i] = ql.blackFormula(opt, k, f, sd, 1.0)
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(opt, k), f, sd, 1.0)
        out["delta"][i] = calc.delta(f)
        out["gamma"][i] = calc.gamma(f)
        out["vega"][i] = calc.vega(t)  # QuantLib: dPrice/dsigma for maturity t
    return out


def _close(ours: np.ndarray, ref: np.ndarray, floor: np.ndarray | float) -> None:
    """1e-9 relative, with an absolute floor for values that are numerically zero."""
    bad = np.abs(ours - ref) > np.maximum(1e-9 * np.abs(ref), floor)
    assert not bad.any(), f"{bad.sum()} mismatches, first at {np.flatnonzero(bad)[:5]}"


def test_prices_match_quantlib(
    inputs: dict[str, np.ndarray], quantlib: dict[str, np.ndarray]
) -> None:
    ours = black76.price(inputs["f"], inputs["k"], inputs["vol"], inputs["t"], inputs["call"])
    _close(ours, quantlib["price"], 1e-12 * inputs["f"])


def test_deltas_match_quantlib(
    inputs: dict[str, np.ndarray], quantlib: dict[str, np.ndarray]
) -> None:
    ours = black76.delta(inputs["f"], inputs["k"], inputs["vol"], inputs["t"], inputs["call"])
    _close(ours, quantlib["delta"], 1e-12)


def test_gammas_match_quantlib(
    inputs: dict[str, np.ndarray], quantlib: dict[str, np.ndarray]
) -> None:
    ours = black76.gamma(inputs["f"], inputs["k"], inputs["vol"], inputs["t"])
    _close(ours, quantlib["gamma"], 1e-15 / inputs["f"])


def test_vegas_match_quantlib(
    inputs: dict[str, np.ndarray], quantlib: dict[str, np.ndarray]
) -> None:
    ours = black76.vega(inputs["f"], inputs["k"], inputs["vol"], inputs["t"])
    _close(ours, quantlib["vega"], 1e-12 * inputs["f"])


def test_known_value_at_the_money() -> None:
    # ATM: call = put = F (2 N(sd/2) - 1); F=100, sd=0.2 -> 100 (2 N(0.1) - 1) = 7.965567455405804
    assert black76.price(100.0, 100.0, 0.2, 1.0, True) == pytest.approx(7.965567455405804, 1e-12)
    assert black76.price(100.0, 100.0, 0.2, 1.0, False) == pytest.approx(7.965567455405804, 1e-12)
    # delta N(0.1) = 0.539827837277029; vega F n(0.1) sqrt T = 100 x 0.396952547477012
    assert black76.delta(100.0, 100.0, 0.2, 1.0, True) == pytest.approx(0.539827837277029, 1e-12)
    assert black76.vega(100.0, 100.0, 0.2, 1.0) == pytest.approx(39.6952547477012, 1e-12)


def test_put_call_parity(inputs: dict[str, np.ndarray]) -> None:
    f, k, v, t = inputs["f"], inputs["k"], inputs["vol"], inputs["t"]
    parity = black76.price(f, k, v, t, True) - black76.price(f, k, v, t, False)
    assert np.all(np.abs(parity - (f - k)) <= 1e-12 * (f + k))
    deltas = black76.delta(f, k, v, t, True) - black76.delta(f, k, v, t, False)
    np.testing.assert_array_equal(deltas, 1.0)


def test_expired_options_are_intrinsic() -> None:
    f = np.array([90.0, 100.0, 110.0])
    assert black76.price(f, 100.0, 0.5, 0.0, True).tolist() == [0.0, 0.0, 10.0]
    assert black76.price(f, 100.0, 0.5, -1.0, False).tolist() == [10.0, 0.0, 0.0]
    assert black76.delta(f, 100.0, 0.5, 0.0, True).tolist() == [0.0, 0.5, 1.0]
    assert black76.delta(f, 100.0, 0.5, -0.1, False).tolist() == [-1.0, -0.5, 0.0]
    assert black76.gamma(f, 100.0, 0.5, 0.0).tolist() == [0.0, 0.0, 0.0]
    assert black76.vega(f, 100.0, 0.5, 0.0).tolist() == [0.0, 0.0, 0.0]


def test_zero_vol_is_intrinsic() -> None:
    f = np.array([90.0, 100.0, 110.0])
    assert black76.price(f, 100.0, 0.0, 1.0, True).tolist() == [0.0, 0.0, 10.0]
    assert black76.delta(f, 100.0, 0.0, 1.0, False).tolist() == [-1.0, -0.5, 0.0]
    assert black76.gamma(f, 100.0, 0.0, 1.0).tolist() == [0.0, 0.0, 0.0]


def test_broadcasting_and_mixed_types() -> None:
    f = np.array([[90.0], [110.0]])  # 2 x 1
    k = np.array([80.0, 100.0, 120.0])  # 3
    call = np.array([True, False, True])
    p = black76.price(f, k, 0.6, 0.25, call)
    assert p.shape == (2, 3) and p.dtype == np.float64
    assert p[1, 1] == pytest.approx(float(black76.price(110.0, 100.0, 0.6, 0.25, False)), 1e-15)
    t = np.array([0.0, 0.5, 1.0])  # a mix of expired and live options in one call
    got = black76.price(105.0, 100.0, 0.5, t, True)
    assert got[0] == 5.0 and got[1] > 5.0 and got[2] > got[1]
    assert black76.price(100.0, 100.0, 0.5, 1.0, True).shape == ()


@settings(max_examples=200, deadline=None)
@given(
    f=st.floats(100, 1e5),
    k_ratio=st.floats(0.3, 3),
    vol=st.floats(0.05, 3),
    t=st.floats(1e-3, 3),
)
def test_call_bounds_and_monotone(f: float, k_ratio: float, vol: float, t: float) -> None:
    k = f * k_ratio
    c = float(black76.price(f, k, vol, t, True))
    assert max(f - k, 0.0) - 1e-9 * f <= c <= f
    assert float(black76.price(f * 1.01, k, vol, t, True)) >= c - 1e-9 * f
    assert float(black76.price(f, k, vol * 1.01, t, True)) >= c - 1e-9 * f
    p = float(black76.price(f, k, vol, t, False))
    assert max(k - f, 0.0) - 1e-9 * k <= p <= k


@settings(max_examples=200, deadline=None)
@given(
    f=st.floats(100, 1e5),
    k_ratio=st.floats(0.5, 2),
    vol=st.floats(0.1, 2),
    t=st.floats(0.02, 3),
    call=st.booleans(),
)
def test_greeks_are_derivatives(f: float, k_ratio: float, vol: float, t: float, call: bool) -> None:
    """Central differences of the price agree with the analytic delta, gamma and vega."""
    k = f * k_ratio
    h = 1e-3 * vol * math.sqrt(t) * f  # small against the std-dev of ln F
    up, mid, down = (float(black76.price(x, k, vol, t, call)) for x in (f + h, f, f - h))
    noise = 1e-13 * (f + k)  # rounding of the prices, ~ a few hundred ulps
    delta = float(black76.delta(f, k, vol, t, call))
    assert delta == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-6 + noise / h)
    gamma = float(black76.gamma(f, k, vol, t))
    assert gamma == pytest.approx((up - 2 * mid + down) / h**2, rel=1e-4, abs=noise / h**2)
    dv = 1e-5
    fd_vega = (black76.price(f, k, vol + dv, t, call) - black76.price(f, k, vol - dv, t, call)) / (
        2 * dv
    )
    assert float(black76.vega(f, k, vol, t)) == pytest.approx(
        float(fd_vega), rel=1e-5, abs=1e-6 * f
    )
