"""Engine benchmark: a 100,000-account book over 3 underlyings and 2,000 listed instruments.

Prints (and returns) the time to revalue every account after one underlying moves, the time of
one fill's incremental update, full ES_99 for every account, and the per-account speed ratio
against the plain reference implementation (tests/engine/reference.py) on a sample of the book.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.book import MarginBook
from engine.instruments import format_expiry, parse_expiry
from engine.market import AssetMarket, DepthCurve, MarketSnapshot, UnderlyingMarket, VolSurface
from engine.params import AssetClass, RiskParams
from engine.portfolio import Portfolio, Position

AS_OF = parse_expiry("24NOV26")
SPOTS = {"BTC": 100_000.0, "ETH": 4_000.0, "SOL": 200.0}
DEPTH = DepthCurve(
    np.array([10.0, 25, 50, 100, 200, 500, 1000]),
    np.array([2e6, 6e6, 15e6, 40e6, 90e6, 200e6, 350e6]),
    np.array([2e6, 6e6, 15e6, 40e6, 90e6, 200e6, 350e6]),
)


def bench_market() -> MarketSnapshot:
    """BTC, ETH and SOL with surfaces and depth."""
    surface = VolSurface(
        np.array([0.02, 0.1, 0.25, 0.5, 1.0]),
        np.linspace(-0.6, 0.6, 7),
        np.array([[0.9, 0.75, 0.62, 0.55, 0.6, 0.7, 0.85]] * 5) * np.linspace(1.1, 0.9, 5)[:, None],
    )
    unds = {
        u: UnderlyingMarket(
            s, AssetClass.MAJOR if u != "SOL" else AssetClass.MID_CAP, 0.04, 0.6, surface, DEPTH
        )
        for u, s in SPOTS.items()
    }
    return MarketSnapshot(AS_OF, unds, {"USDC": AssetMarket(1.0, AssetClass.STABLECOIN)}, {})


def listed_instruments(total: int = 2000) -> list[str]:
    """Perpetuals, futures and an option chain per underlying: `total` names."""
    expiries = [format_expiry(AS_OF + d * 86400.0) for d in (3, 10, 17, 31, 59, 94, 185, 276, 367)]
    names: list[str] = []
    per = total // len(SPOTS)
    for u, s in SPOTS.items():
        mine = [f"{u}-PERPETUAL", f"{u}-PERPETUAL-INV", *(f"{u}-{e}" for e in expiries)]
        strikes = np.round(s * np.linspace(0.5, 2.0, 40), 2)
        for e in expiries:
            for k in strikes:
                mine += [f"{u}-{e}-{k:g}-C", f"{u}-{e}-{k:g}-P"]
        names += mine[:per]
    return names + [
        f"BTC-{expiries[-1]}-{SPOTS['BTC'] * 3 + i:g}-C" for i in range(total - len(names))
    ]


def random_book(
    accounts: int, positions: int, seed: int = 1
) -> tuple[MarginBook, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A book of `accounts` x `positions` random positions over the listed instruments."""
    rng = np.random.default_rng(seed)
    names = listed_instruments()
    rows = np.repeat(np.arange(accounts), positions)
    cols = rng.integers(0, len(names), accounts * positions)
    qty = rng.normal(0.0, 2.0, rows.size)
    entry = np.array([SPOTS[n.split("-")[0]] for n in names])[cols] * rng.uniform(
        0.9, 1.1, rows.size
    )
    inverse = np.array([n.endswith("-INV") for n in names])[cols]
    qty = np.where(inverse, qty * 10_000, qty)
    book = MarginBook(RiskParams(), bench_market())
    ids = [f"acct-{i}" for i in range(accounts)]
    book.bulk_load(ids, names, rows, cols, qty, entry)
    for asset, amount in (("USDC", 50_000.0), ("BTC", 0.5)):
        col = book.asset_column(asset)
        book.collateral[:accounts, col] = rng.uniform(0, 2 * amount, accounts)
    book.update_market(book.market)
    return book, names, rows, cols, qty, entry


def _timed(fn: Any, repeat: int) -> float:
    """Median seconds of fn over repeats."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(accounts: int = 100_000, positions: int = 10, sample: int = 30) -> dict[str, float]:
    """Every engine figure, in seconds or ratios."""
    from tests.engine.reference import reference_margin

    build = time.perf_counter()
    book, names, rows, cols, qty, entry = random_book(accounts, positions)
    build_s = time.perf_counter() - build
    btc = book.market.underlyings["BTC"]
    moved = [replace(btc, mark=btc.mark * f) for f in (0.97, 1.01, 0.99)]
    state = {"i": 0}

    def revalue_vectors() -> None:
        state["i"] += 1
        book.update_underlying("BTC", moved[state["i"] % 3])

    revalue_s = _timed(revalue_vectors, 3)
    margin_s = _timed(book.margin, 3)
    report = book.margin()
    es_only = _timed(book.shortfall, 3)
    rng = np.random.default_rng(2)

    def one_fill() -> None:
        a = int(rng.integers(0, accounts))
        name = names[int(rng.integers(0, len(names)))]
        book.set_position(f"acct-{a}", name, float(rng.normal()), SPOTS[name.split("-")[0]])
        book.margin_rows(np.array([a]))

    fill_s = _timed(one_fill, 2000)
    ref_s = _reference_time(book, rows, cols, qty, entry, names, sample, reference_margin)
    dense = _dense_floor(accounts, positions)
    per_account = (revalue_s + margin_s) / accounts
    return {
        "accounts": accounts,
        "positions": accounts * positions,
        "instruments": len(names),
        "build_s": build_s,
        "revalue_one_underlying_s": revalue_s,
        "margin_all_accounts_s": margin_s,
        "revalue_plus_margin_s": revalue_s + margin_s,
        "es99_all_accounts_s": es_only,
        "one_fill_incremental_s": fill_s,
        "reference_per_account_s": ref_s,
        "vectorised_per_account_s": per_account,
        "speed_ratio_vs_reference": ref_s / per_account,
        "dense_product_floor_s": dense,
        "accounts_in_liquidation": float((report.state >= 2).sum()),
    }


def _reference_time(
    book: MarginBook,
    rows: np.ndarray,
    cols: np.ndarray,
    qty: np.ndarray,
    entry: np.ndarray,
    names: list[str],
    sample: int,
    reference: Any,
) -> float:
    """Seconds per account of the plain reference on a sample of the same book."""
    chosen = range(sample)
    portfolios = []
    for a in chosen:
        mask = rows == a
        positions: dict[str, Position] = {}
        for c, q, e in zip(
            cols[mask].tolist(), qty[mask].tolist(), entry[mask].tolist(), strict=True
        ):
            positions[names[c]] = Position(names[c], q, e)
        coll = {asset: float(book.collateral[a, book.asset_index[asset]]) for asset in book.assets}
        portfolios.append(Portfolio(f"acct-{a}", coll, tuple(positions.values())))
    start = time.perf_counter()
    for p in portfolios:
        reference(p, book.market, book.params)
    return (time.perf_counter() - start) / sample


def _dense_floor(accounts: int, positions: int) -> float:
    """Seconds numpy needs for one dense [A, I_u] @ [I_u, J] product of the same size per
    underlying: the machine's floor for a full revaluation."""
    per_underlying = 2000 // 3
    a = np.random.default_rng(0).random((accounts, per_underlying))
    b = np.random.default_rng(1).random((per_underlying, 56))
    return _timed(lambda: a @ b, 3)


def main() -> dict[str, float]:
    """Run and print the table."""
    figures = run()
    out = Path("reports")
    out.mkdir(exist_ok=True)
    (out / "bench_engine.json").write_text(json.dumps(figures, indent=2))
    targets = {
        "revalue_plus_margin_s": 0.150,
        "one_fill_incremental_s": 50e-6,
        "es99_all_accounts_s": 1.0,
    }
    print("\nengine (100,000 accounts x 10 positions, 3 underlyings, 2,000 instruments, 56 scen.)")
    print(f"{'figure':34} {'value':>14} {'target':>10} {'ratio':>8}")
    for key, value in figures.items():
        target = targets.get(key)
        shown = f"{value * 1e3:11.3f} ms" if key.endswith("_s") else f"{value:14,.1f}"
        tail = f"{target * 1e3:7.3f} ms {value / target:8.2f}" if target else ""
        print(f"{key:34} {shown:>14} {tail}")
    return figures


if __name__ == "__main__":
    main()
