"""The vectorised book against the plain reference implementation, on random books."""

from __future__ import annotations

import numpy as np
import pytest

from engine.book import MarginBook
from engine.bulk_load import bulk_load
from engine.margin import AccountMargin
from engine.params import RiskParams
from engine.portfolio import Portfolio
from tests.engine.random_books import random_market, random_portfolio
from tests.engine.reference import reference_margin

FIELDS = (
    "equity",
    "equity_mm",
    "equity_im",
    "im",
    "mm",
    "scenario_requirement",
    "directional_total",
    "es99",
    "var99",
    "liquidity_addon",
)
UNDERLYING_FIELDS = (
    "worst_loss",
    "directional",
    "two_sided",
    "short_option",
    "delta",
    "basis",
    "liquidity_addon",
    "delta_notional",
)


def _assert_matches(ours: AccountMargin, ref: dict, scale: float) -> None:
    """Every figure equal to 1e-9 relative (absolute 1e-9 x the account's scale near zero)."""
    tol = 1e-9 * scale
    for key in FIELDS:
        assert getattr(ours, key) == pytest.approx(ref[key], rel=1e-9, abs=tol), key
    for u, comps in ref["underlyings"].items():
        got = ours.underlyings.get(u, dict.fromkeys(UNDERLYING_FIELDS, 0.0))
        for key in UNDERLYING_FIELDS:
            assert got[key] == pytest.approx(comps[key], rel=1e-9, abs=tol), (u, key)
    for asset, h in ref["haircuts"].items():
        if asset in ours.haircuts:
            assert ours.haircuts[asset]["haircut"] == pytest.approx(h, rel=1e-9, abs=1e-12)


def _scale(p: Portfolio) -> float:
    """A size for the absolute tolerance: the account's gross notional plus collateral."""
    return 1e5 * (1 + sum(abs(x.qty) for x in p.positions) + sum(map(abs, p.collateral.values())))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_book_matches_reference_on_random_books(seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = random_market(rng)
    params = RiskParams()
    portfolios = [random_portfolio(rng, f"a{i}", int(rng.integers(0, 8))) for i in range(40)]
    book = MarginBook(params, market)
    for p in portfolios:
        book.load_portfolio(p.account, p.position_tuples(), p.collateral)
    report = book.margin()
    for i, p in enumerate(portfolios):
        _assert_matches(report.account(i), reference_margin(p, market, params), _scale(p))


def test_incremental_fills_and_market_moves_match_a_fresh_book() -> None:
    rng = np.random.default_rng(11)
    market = random_market(rng)
    params = RiskParams()
    portfolios = [random_portfolio(rng, f"a{i}", 5) for i in range(30)]
    book = MarginBook(params, market)
    for p in portfolios:
        book.load_portfolio(p.account, p.position_tuples(), p.collateral)
    book.margin()
    moved = random_market(rng)
    book.update_market(moved, ["BTC"])
    book.update_market(moved, ["ETH", "SOL"])
    changed = []
    for p in portfolios[:10]:
        extra = random_portfolio(rng, p.account, 3)
        merged = {x.instrument: x for x in (*p.positions, *extra.positions)}
        new = Portfolio(p.account, {**p.collateral, **extra.collateral}, tuple(merged.values()))
        for x in extra.positions:
            book.set_position(p.account, x.instrument, x.qty, x.entry_price)
        for asset, bal in extra.collateral.items():
            book.set_collateral(p.account, asset, bal)
        changed.append(new)
    final = {p.account: p for p in portfolios} | {p.account: p for p in changed}
    report = book.margin()
    for i, account in enumerate(report.accounts):
        p = final[account]
        _assert_matches(report.account(i), reference_margin(p, moved, params), _scale(p))
    # and the incremental state survives a full revaluation unchanged
    book.update_market(moved)
    again = book.margin()
    np.testing.assert_allclose(again.im, report.im, rtol=1e-9, atol=1e-6)


def test_bulk_load_equals_one_by_one() -> None:
    rng = np.random.default_rng(5)
    market = random_market(rng)
    params = RiskParams()
    portfolios = [random_portfolio(rng, f"a{i}", 6) for i in range(25)]
    one = MarginBook(params, market)
    for p in portfolios:
        one.load_portfolio(p.account, p.position_tuples(), {})
    names = sorted({x.instrument for p in portfolios for x in p.positions})
    rows, cols, qty, entry = [], [], [], []
    for a, p in enumerate(portfolios):
        for x in p.positions:
            rows.append(a)
            cols.append(names.index(x.instrument))
            qty.append(x.qty)
            entry.append(x.entry_price)
    bulk = MarginBook(params, market)
    bulk_load(
        bulk,
        [p.account for p in portfolios],
        names,
        np.array(rows),
        np.array(cols),
        np.array(qty),
        np.array(entry),
    )
    a, b = one.margin(), bulk.margin()
    np.testing.assert_allclose(a.im, b.im, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(a.equity, b.equity, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(a.per_underlying.short_option, b.per_underlying.short_option)


def test_closing_every_position_leaves_nothing() -> None:
    rng = np.random.default_rng(3)
    market = random_market(rng)
    p = random_portfolio(rng, "x", 6)
    book = MarginBook(RiskParams(), market)
    book.load_portfolio(p.account, p.position_tuples(), {"USDC": 1000.0})
    book.load_portfolio(p.account, [], {"USDC": 1000.0})
    out = book.margin().account(0)
    assert out.im == pytest.approx(0.0, abs=1e-6)
    assert out.equity == pytest.approx(1000.0)
    assert out.state == "HEALTHY"


def test_closing_in_many_uneven_slices_leaves_exactly_zero() -> None:
    """A position closed through many partial fills (the liquidation path) leaves no float
    residue: MM is exactly 0 (not 1e-12) before and after a revaluation, so an empty account
    with a deficit after haircuts is never held below a requirement it does not have; a coin
    of the underlying keeps exactly its own risk."""
    rng = np.random.default_rng(8)
    market = random_market(rng)
    p = random_portfolio(rng, "x", 6)
    book = MarginBook(RiskParams(), market)
    book.load_portfolio("x", p.position_tuples(), {"USDC": 5_000.0})
    book.load_portfolio("coin", [], {"BTC": 0.7})
    coin_alone = book.margin(["coin"]).account(0)
    book.set_collateral("coin", "USDC", 1.0)
    for x in p.positions:
        for holder in ("x", "coin"):
            book.set_position(holder, x.instrument, x.qty, x.entry_price)
            left = x.qty
            for fraction in rng.uniform(0.05, 0.4, size=12):
                left -= left * float(fraction)
                book.set_position(holder, x.instrument, left * (1 + 1e-16), x.entry_price)
            book.set_position(holder, x.instrument, 0.0, x.entry_price)
    for revalue in (False, True):
        if revalue:
            book.update_market(market)
        x_out, coin_out = book.margin(["x"]).account(0), book.margin(["coin"]).account(0)
        assert x_out.mm == 0.0 and x_out.im == 0.0, x_out.mm
        for key in ("mm", "im", "scenario_requirement", "es99"):
            assert getattr(coin_out, key) == pytest.approx(
                getattr(coin_alone, key), rel=1e-12, abs=0.0
            ), key


def test_a_book_with_no_underlyings_margins_cash_only_accounts() -> None:
    from engine.market import MarketSnapshot

    book = MarginBook(RiskParams(), MarketSnapshot(0.0, {}, {}, {}))
    book.set_collateral("cash", "USD", 100.0)
    out = book.margin().account(0)
    assert out.equity == 100.0 and out.im == 0.0 and out.state == "HEALTHY"


def _assert_same_report(one: AccountMargin, batch: AccountMargin) -> None:
    """Two views of one account equal to rounding (1e-12 relative, 1e-9 USD absolute)."""
    for key in (*FIELDS, "risk_requirement"):
        assert getattr(one, key) == pytest.approx(getattr(batch, key), rel=1e-12, abs=1e-9), key
    assert (one.ratio_mm is None) == (batch.ratio_mm is None)
    if batch.ratio_mm is not None:
        assert one.ratio_mm == pytest.approx(batch.ratio_mm, rel=1e-12)
    assert one.state == batch.state
    assert one.underlyings.keys() == batch.underlyings.keys()
    for u, comps in batch.underlyings.items():
        for key, value in comps.items():
            assert one.underlyings[u][key] == pytest.approx(value, rel=1e-12, abs=1e-9), (u, key)
    assert one.haircuts.keys() == batch.haircuts.keys()
    for asset, figures in batch.haircuts.items():
        assert one.haircuts[asset] == pytest.approx(figures, rel=1e-12, abs=1e-12), asset


@pytest.mark.parametrize("seed", [4, 8])
def test_the_one_account_path_equals_the_batch_path(seed: int) -> None:
    """margin of one row (engine/account_margin.py) against the batch pass over every row,
    through fills, transfers, a market move and a changed PSR; empty and cash-only accounts."""
    rng = np.random.default_rng(seed)
    market = random_market(rng)
    book = MarginBook(RiskParams(), market)
    for i in range(30):
        p = random_portfolio(rng, f"a{i}", int(rng.integers(0, 7)))
        book.load_portfolio(p.account, p.position_tuples(), p.collateral)
    book.set_collateral("cash", "USDC", 1000.0)
    book.account_row("empty")

    def check() -> None:
        batch = book.margin_batch(np.arange(len(book)))
        for i, account in enumerate(batch.accounts):
            _assert_same_report(book.margin([account]).account(0), batch.account(i))

    check()
    for p in (random_portfolio(rng, f"a{i}", 2) for i in range(0, 30, 3)):
        for x in p.positions:
            book.set_position(p.account, x.instrument, x.qty, x.entry_price)
        book.set_collateral(p.account, "BTC", float(rng.normal(1, 2)))
    check()
    book.update_market(random_market(rng), ["BTC", "SOL"])
    book.set_psr("ETH", 0.3)
    check()
