"""Engine benchmark: a 100,000-account book over 3 underlyings and 2,000 listed instruments.

Prints (and returns) the time to revalue every account after one underlying moves (options
repriced), one fill's incremental update (the account's vectors, then with its margin), full ES_99
for every account, each beside the plain reference implementation (tests/engine/reference.py,
timed on a sample of the same book and scaled) and beside numpy's time for one dense product of
the same size (the machine's floor). BLAS runs on one thread (bench/__init__.py).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from bench.report import Row, publish, times
from engine.book import MarginBook
from engine.bulk_load import bulk_load
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
    bulk_load(book, ids, names, rows, cols, qty, entry)
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
    build = time.perf_counter()
    book, names, rows, cols, qty, entry = random_book(accounts, positions)
    build_s = time.perf_counter() - build
    btc = book.market.underlyings["BTC"]
    moved = [replace(btc, mark=btc.mark * f) for f in (0.97, 1.01, 0.99)]
    state = {"i": 0}

    def revalue_vectors() -> None:
        state["i"] += 1
        book.update_underlying("BTC", moved[state["i"] % 3])

    revalue_s = _timed(revalue_vectors, 5)
    margin_s = _timed(book.margin, 3)
    report = book.margin()
    es_only = _timed(book.shortfall, 3)
    vectors_s, fill_s = _one_fill(book, names, accounts)
    ref = _reference_times(book, rows, cols, qty, entry, names, sample)
    return {
        "accounts": accounts,
        "positions": accounts * positions,
        "instruments": len(names),
        "build_s": build_s,
        "revalue_one_underlying_s": revalue_s,
        "margin_all_accounts_s": margin_s,
        "margin_without_es_s": max(margin_s - es_only, 0.0),
        "revalue_plus_margin_s": revalue_s + margin_s,
        "es99_all_accounts_s": es_only,
        "one_fill_vectors_s": vectors_s,
        "one_fill_incremental_s": fill_s,
        "reference_per_account_s": ref["margin"],
        "reference_es_per_account_s": ref["es"],
        "vectorised_per_account_s": (revalue_s + margin_s) / accounts,
        "speed_ratio_vs_reference": ref["margin"] * accounts / (revalue_s + margin_s),
        "dense_product_floor_s": _dense_floor(accounts, 2000 // 3, 56),
        "dense_es_floor_s": _dense_floor(accounts, _es_width(book), _draws(book)),
        "dense_one_account_es_floor_s": _dense_floor(1, _es_width(book), _draws(book), 2000),
        "accounts_in_liquidation": float((report.state >= 2).sum()),
    }


def _one_fill(book: MarginBook, names: list[str], accounts: int) -> tuple[float, float]:
    """Median seconds of one fill: its vectors alone (dq x R_i), and vectors plus the account's
    margin (IM, MM, ES: what its status needs). The random draws are made beforehand."""
    rng = np.random.default_rng(2)
    count = 2000
    rows = rng.integers(0, accounts, count).tolist()
    picked = [names[i] for i in rng.integers(0, len(names), count).tolist()]
    qty = rng.normal(size=count).tolist()
    entry = [SPOTS[n.split("-")[0]] for n in picked]
    ids = [f"acct-{a}" for a in rows]
    vectors, whole = [], []
    for i in range(count):
        start = time.perf_counter()
        book.set_position(ids[i], picked[i], qty[i], entry[i])
        mid = time.perf_counter()
        book.margin_rows(np.array([rows[i]]))
        end = time.perf_counter()
        vectors.append(mid - start)
        whole.append(end - start)
    return float(np.median(vectors)), float(np.median(whole))


def _reference_times(
    book: MarginBook,
    rows: np.ndarray,
    cols: np.ndarray,
    qty: np.ndarray,
    entry: np.ndarray,
    names: list[str],
    sample: int,
) -> dict[str, float]:
    """Seconds per account of the plain reference (tests/engine/reference.py) on a sample of the
    same book: its whole margin, and its ES alone on the book's own ES-grid PnL."""
    from tests.engine.reference import _reference_es, reference_margin

    portfolios = []
    for a in range(sample):
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
        reference_margin(p, book.market, book.params)
    margin = (time.perf_counter() - start) / sample
    unds = sorted(book.underlyings)
    grids = {
        u: list(zip(b.grid.es_moves.tolist(), b.pnl[:sample, b.grid.es_index].T, strict=True))
        for u, b in book.underlyings.items()
    }
    start = time.perf_counter()
    for a in range(sample):
        es_pnl = {u: [(m, float(p[a])) for m, p in grids[u]] for u in unds}
        _reference_es(unds, es_pnl, book.market, book.params)
    return {"margin": margin, "es": (time.perf_counter() - start) / sample}


def _es_width(book: MarginBook) -> int:
    """Columns of the ES product: every underlying's ES grid."""
    return sum(b.grid.es_index.size for b in book.underlyings.values())


def _draws(book: MarginBook) -> int:
    """Joint draws of the ES."""
    return int(book.params.shortfall.draws)


def _dense_floor(rows: int, inner: int, cols: int, repeat: int = 3) -> float:
    """Median seconds numpy needs for one dense [rows, inner] @ [inner, cols] product: the
    machine's floor for work of that size."""
    a = np.random.default_rng(0).random((rows, inner))
    b = np.random.default_rng(1).random((inner, cols))
    return _timed(lambda: a @ b, repeat)


def rows_of(f: dict[str, float]) -> list[Row]:
    """The table: each target beside the reference and the dense floor."""
    n = int(f["accounts"])
    ms, us = 1e3, 1e6
    ref_all = f["reference_per_account_s"] * n
    es, fill = f["es99_all_accounts_s"], f["one_fill_incremental_s"]
    es_vs = (
        f"reference {times(es, f['reference_es_per_account_s'] * n)}, "
        f"dense floor {times(es, f['dense_es_floor_s'])}"
    )
    fill_vs = (
        f"reference {times(fill, f['reference_per_account_s'])}, "
        f"dense floor {times(fill, f['dense_one_account_es_floor_s'])}"
    )
    return [
        Row("build the book (bulk load)", f["build_s"], "s"),
        Row(
            "revalue after one underlying moves",
            f["revalue_one_underlying_s"] * ms,
            "ms",
            150.0,
            ratio=f"dense floor {times(f['revalue_one_underlying_s'], f['dense_product_floor_s'])}",
        ),
        Row(
            f"  dense floor [{n}x666]@[666x56]",
            f["dense_product_floor_s"] * ms,
            "ms",
        ),
        Row("margin of every account without ES", f["margin_without_es_s"] * ms, "ms"),
        Row(
            "revalue + full margin (a market tick)",
            f["revalue_plus_margin_s"] * ms,
            "ms",
            ratio=f"reference {times(f['revalue_plus_margin_s'], ref_all)}",
        ),
        Row(f"  reference margin x {n:,} (sampled)", ref_all, "s"),
        Row(
            "ES_99 of every account",
            f["es99_all_accounts_s"] * ms,
            "ms",
            1000.0,
            ratio=es_vs,
        ),
        Row(f"  reference ES x {n:,} (sampled)", f["reference_es_per_account_s"] * n, "s"),
        Row(f"  dense floor [{n}x63]@[63x2000]", f["dense_es_floor_s"] * ms, "ms"),
        Row("one fill: the account's vectors", f["one_fill_vectors_s"] * us, "µs"),
        Row(
            "one fill: vectors + the account's margin",
            f["one_fill_incremental_s"] * us,
            "µs",
            50.0,
            ratio=fill_vs,
        ),
        Row("  reference margin of one account", f["reference_per_account_s"] * us, "µs"),
        Row("  dense floor [1x63]@[63x2000]", f["dense_one_account_es_floor_s"] * us, "µs"),
        Row("accounts in liquidation (sanity)", f["accounts_in_liquidation"]),
    ]


def main() -> dict[str, float]:
    """Run, print the table, write reports/bench_engine.json."""
    figures = run()
    publish(
        "engine",
        "engine (100,000 accounts x 10 positions, 3 underlyings, 2,000 instruments, 56 scen.; "
        "one core)",
        rows_of(figures),
        {"figures": figures},
    )
    return figures


if __name__ == "__main__":
    main()
