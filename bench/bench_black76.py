"""Option repricing benchmark: scenario prices per second of the vectorised Black-76.

The inputs are the engine benchmark's option chains (BTC, ETH, SOL; 9 expiries x 40 strikes)
valued in every scenario of the default set (56 moves and vol states): forward moved with the
underlying, base vol from the surface (sticky strike), shocked up or down by expiry. The same
prices are computed by engine/black76.py in one call over the [options, scenarios] grid and by
QuantLib's Black formula (ql.blackFormula) called in a Python loop, on a sample of the same
inputs; the two must agree (the largest difference is printed). The engine's whole risk-array
step for an underlying (engine/risk_arrays.value_instruments: surface, shocks, Black-76 and the
linear contracts) is timed too, in scenario prices per second.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from bench.bench_engine import AS_OF, bench_market, listed_instruments
from bench.report import Row, publish, times
from engine import black76
from engine.arrays import YEAR_SECONDS
from engine.instruments import InstrumentArrays, InstrumentKind, parse_instrument
from engine.params import RiskParams
from engine.risk_arrays import value_instruments
from engine.scenarios import scenario_grid, shocked_vols

QL_SAMPLE = 40_000  # prices QuantLib computes in the loop (a few tenths of a second)


def scenario_inputs() -> dict[str, np.ndarray]:
    """Forward, strike, vol, time and call flag of every option in every scenario, [N, J]."""
    market = bench_market()
    params = RiskParams()
    options = [
        i
        for i in (parse_instrument(n) for n in listed_instruments())
        if i.kind is InstrumentKind.OPTION
    ]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "k", "vol", "t", "call")}
    for und in sorted({o.underlying for o in options}):
        mine = [o for o in options if o.underlying == und]
        um = market.underlyings[und]
        grid = scenario_grid(params, und)
        t = np.array([(o.expiry or AS_OF) - AS_OF for o in mine]) / YEAR_SECONDS
        forward = np.asarray(um.forward(t))
        strike = np.array([o.strike for o in mine], dtype=np.float64)
        assert um.vol_surface is not None
        base = um.vol_surface.vol(t, np.log(strike / forward))
        up, down = shocked_vols(base, t * 365.0, params.vol_shock)
        state = grid.vol_state[None, :]
        vols = np.where(state > 0, up[:, None], np.where(state < 0, down[:, None], base[:, None]))
        shape = vols.shape
        cols["f"].append(forward[:, None] * (1.0 + grid.moves[None, :]))
        cols["k"].append(np.broadcast_to(strike[:, None], shape))
        cols["vol"].append(vols)
        cols["t"].append(np.broadcast_to(t[:, None], shape))
        cols["call"].append(np.broadcast_to(np.array([o.is_call for o in mine])[:, None], shape))
    return {k: np.concatenate([np.asarray(a) for a in v]).ravel() for k, v in cols.items()}


def _best(fn: Any, repeat: int) -> float:
    """Best seconds of fn over repeats (the least disturbed run)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> dict[str, float]:
    """Prices per second of each implementation and their largest difference."""
    import QuantLib as ql

    x = scenario_inputs()
    n = x["f"].size
    vector_s = _best(lambda: black76.price(x["f"], x["k"], x["vol"], x["t"], x["call"]), 5)
    ours = black76.price(x["f"], x["k"], x["vol"], x["t"], x["call"])
    pick = np.random.default_rng(3).choice(n, size=min(QL_SAMPLE, n), replace=False)
    args = [
        (ql.Option.Call if c else ql.Option.Put, k, f, v * math.sqrt(t))
        for f, k, v, t, c in zip(
            *(x[key][pick].tolist() for key in ("f", "k", "vol", "t", "call")), strict=True
        )
    ]
    formula = ql.blackFormula
    start = time.perf_counter()
    theirs = [formula(kind, k, f, sd, 1.0) for kind, k, f, sd in args]
    ql_s = time.perf_counter() - start
    diff = np.abs(np.array(theirs) - ours[pick])
    scale = np.maximum(np.abs(ours[pick]), 1.0)
    risk_s, risk_prices = _risk_arrays()
    return {
        "prices": float(n),
        "vectorised_s": vector_s,
        "vectorised_per_s": n / vector_s,
        "quantlib_sample": float(len(args)),
        "quantlib_s": ql_s,
        "quantlib_per_s": len(args) / ql_s,
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float((diff / scale).max()),
        "risk_arrays_s": risk_s,
        "risk_arrays_per_s": risk_prices / risk_s,
    }


def _risk_arrays() -> tuple[float, float]:
    """Best seconds of the whole risk-array step for BTC's instruments, and its option prices
    (now and in every scenario)."""
    market = bench_market()
    params = RiskParams()
    mine = [i for i in (parse_instrument(n) for n in listed_instruments()) if i.underlying == "BTC"]
    arrays = InstrumentArrays.of(mine)
    grid = scenario_grid(params, "BTC")
    own = np.full(len(mine), np.nan)
    und = market.underlyings["BTC"]

    def value() -> None:
        value_instruments(arrays, own, und, grid, market.as_of, params.vol_shock, "BTC")

    options = sum(i.kind is InstrumentKind.OPTION for i in mine)
    return _best(value, 5), float(options * (grid.size + 1))


def rows_of(f: dict[str, float]) -> list[Row]:
    """The table."""
    return [
        Row(
            f"Black-76 vectorised ({int(f['prices']):,} scenario prices)",
            f["vectorised_per_s"] / 1e6,
            "M/s",
            ratio=f"QuantLib loop {times(1.0 / f['vectorised_per_s'], 1.0 / f['quantlib_per_s'])}",
        ),
        Row(
            f"QuantLib blackFormula loop ({int(f['quantlib_sample']):,} prices)",
            f["quantlib_per_s"] / 1e6,
            "M/s",
        ),
        Row(
            "risk arrays end to end (BTC: surface, shocks, prices)",
            f["risk_arrays_per_s"] / 1e6,
            "M/s",
        ),
        Row("largest |difference| vs QuantLib (USD)", f["max_abs_diff"], ""),
        Row("largest relative difference vs QuantLib", f["max_rel_diff"], ""),
    ]


def main() -> dict[str, float]:
    """Run, print the table, write reports/bench_black76.json."""
    figures = run()
    publish(
        "black76",
        "option repricing (Black-76, the engine's option chains x 56 scenarios)",
        rows_of(figures),
        {"figures": figures},
    )
    return figures


if __name__ == "__main__":
    main()
