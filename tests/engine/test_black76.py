"""Black-76 against QuantLib's Black formula and calculator, on thousands of random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given
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


def _ql(kind: str, inp: dict[str, np.ndarray]) -> np.ndarray:
    """QuantLib's value of price/delta/gamma/vega for every input."""
    out = np.empty(N)
    for i in range(N):
        f, k, vol, t = (float(inp[x][i]) for x in ("f", "k", "vol", "t"))
        opt = ql.Option.Call if inp["call"][i] else ql.Option.Put
        sd = vol * math.sqrt(t)
        if kind == "price":
            out[i] = ql.blackFormula(opt, k, f, sd, 1.0)
            continue
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(opt, k), f, sd, 1.0)
        if kind == "delta":
            out[i] = calc.delta(f)
        elif kind == "gamma":
            out[i] = calc.gamma(f)
        else:
            out[i] = calc.vega(t)
    return out


def _close(ours: np.ndarray, ref: np.ndarray, floor: np.ndarray) -> None:
    """1e-9 relative, with an absolute floor for values that are numerically zero."""
    bad = np.abs(ours - ref) > np.maximum(1e-9 * np.abs(ref), floor)
    assert not bad.any(), f"{bad.sum()} mismatches, first at {np.flatnonzero(bad)[:5]}"


def test_prices_match_quantlib(inputs: dict[str, np.ndarray]) -> None:
    ours = black76.price(inputs["f"], inputs["k"], inputs["vol"], inputs["t"], inputs["call"])
    _close(ours, _ql("price", inputs), 1e-12 * inputs["f"])


def test_deltas_match_quantlib(inputs: dict[str, np.ndarray]) -> None:
    ours = black76.delta(inputs["f"], inputs["k"], inputs["vol"], inputs["t"], inputs["call"])
    _close(ours, _ql("delta", inputs), np.full(N, 1e-12))


def test_gammas_match_quantlib(inputs: dict[str, np.ndarray]) -> None:
    ours = black76.gamma(inputs["f"], inputs["k"], inputs["vol"], inputs["t"])
    _close(ours, _ql("gamma", inputs), 1e-15 / inputs["f"])


def test_vegas_match_quantlib(inputs: dict[str, np.ndarray]) -> None:
    ours = black76.vega(inputs["f"], inputs["k"], inputs["vol"], inputs["t"])
    _close(ours, _ql("vega", inputs), 1e-12 * inputs["f"])


def test_known_value_at_the_money() -> None:
    # ATM: call = F (2 N(sd/2) - 1); F=100, sd=0.2 -> 100 (2 N(0.1) - 1) = 7.965567455405804
    assert black76.price(100.0, 100.0, 0.2, 1.0, True) == pytest.approx(7.965567455405804, 1e-12)


def test_put_call_parity(inputs: dict[str, np.ndarray]) -> None:
    f, k, v, t = inputs["f"], inputs["k"], inputs["vol"], inputs["t"]
    parity = black76.price(f, k, v, t, True) - black76.price(f, k, v, t, False)
    np.testing.assert_allclose(parity, f - k, rtol=1e-9, atol=1e-9 * f.max())


def test_expired_options_are_intrinsic() -> None:
    f = np.array([90.0, 100.0, 110.0])
    assert black76.price(f, 100.0, 0.5, 0.0, True).tolist() == [0.0, 0.0, 10.0]
    assert black76.price(f, 100.0, 0.5, -1.0, False).tolist() == [10.0, 0.0, 0.0]
    assert black76.delta(f, 100.0, 0.5, 0.0, True).tolist() == [0.0, 0.5, 1.0]
    assert black76.gamma(f, 100.0, 0.5, 0.0).tolist() == [0.0, 0.0, 0.0]
    assert black76.vega(f, 100.0, 0.5, 0.0).tolist() == [0.0, 0.0, 0.0]


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
