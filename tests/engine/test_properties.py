"""Properties of the model (hypothesis): homogeneity, hedges, haircuts and depth, IM >= MM >= 0."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import MarginBook
from engine.haircuts import haircut_rates
from engine.liquidity import average_slippage
from engine.margin import AccountMargin
from engine.market import DepthCurve
from engine.params import AssetClass, RiskParams
from engine.portfolio import Portfolio, Position
from tests.engine.market_fixtures import DEPTH
from tests.engine.random_books import random_market, random_portfolio

PARAMS = RiskParams()
seeds = st.integers(0, 2**32 - 1)


def _margin(p: Portfolio, seed: int) -> AccountMargin:
    """One account's margin in the random market of a seed."""
    book = MarginBook(PARAMS, random_market(np.random.default_rng(seed)))
    book.load_portfolio(p.account, p.position_tuples(), p.collateral)
    return book.margin().account(0)


def _scaled(p: Portfolio, k: float) -> Portfolio:
    """Every position and coin balance times k (stable cash kept)."""
    return Portfolio(
        p.account,
        {a: (b * k if a in ("BTC", "ETH", "SOL") else b) for a, b in p.collateral.items()},
        tuple(Position(x.instrument, x.qty * k, x.entry_price) for x in p.positions),
    )


@settings(max_examples=25, deadline=None)
@given(seed=seeds, k=st.floats(0.1, 10.0))
def test_scaling_positions_scales_scenario_risk(seed: int, k: float) -> None:
    p = random_portfolio(np.random.default_rng(seed), "a", 5)
    base, scaled = _margin(p, seed), _margin(_scaled(p, k), seed)
    for key in ("scenario_requirement", "directional_total", "es99", "var99"):
        assert np.isclose(getattr(scaled, key), k * getattr(base, key), rtol=1e-9, atol=1e-6), key


@settings(max_examples=25, deadline=None)
@given(seed=seeds, k=st.floats(1.0, 5.0))
def test_more_risk_never_lowers_margin(seed: int, k: float) -> None:
    p = random_portfolio(np.random.default_rng(seed), "a", 5)
    p = Portfolio(p.account, {"USDC": 1e6}, p.positions)
    assert _margin(_scaled(p, k), seed).im >= _margin(p, seed).im - 1e-6


@settings(max_examples=25, deadline=None)
@given(seed=seeds, f=st.floats(0.0, 1.0))
def test_an_offsetting_hedge_never_raises_the_requirement(seed: int, f: float) -> None:
    p = random_portfolio(np.random.default_rng(seed), "a", 5)
    p = Portfolio(p.account, {"USDC": 1e6}, p.positions)
    hedged = _scaled(p, 1.0 - f)
    before, after = _margin(p, seed), _margin(hedged, seed)
    assert after.im <= before.im + 1e-6
    assert after.mm <= before.mm + 1e-6


@settings(max_examples=25, deadline=None)
@given(seed=seeds, coins=st.floats(0.1, 5.0))
def test_a_coin_held_against_a_short_perpetual_is_a_hedge(seed: int, coins: float) -> None:
    short = Portfolio("a", {"USDC": 1e6}, (Position("BTC-PERPETUAL", -coins, 100_000.0),))
    covered = Portfolio("a", {"USDC": 1e6, "BTC": coins}, short.positions)
    a, b = _margin(short, seed), _margin(covered, seed)
    assert b.scenario_requirement < a.scenario_requirement


@settings(max_examples=50, deadline=None)
@given(
    balance=st.floats(-1e4, 1e4),
    thin=st.floats(0.01, 1.0),
    klass=st.sampled_from(list(AssetClass)),
)
def test_haircuts_never_fall_as_depth_falls(balance: float, thin: float, klass: AssetClass) -> None:
    deep = DepthCurve(np.array(DEPTH["bps"]), np.array(DEPTH["bid"]), np.array(DEPTH["ask"]))
    shallow = deep.scaled(thin)
    b = np.array([balance])
    h_deep = haircut_rates(b, 100_000.0, klass, deep, PARAMS.haircuts)
    h_thin = haircut_rates(b, 100_000.0, klass, shallow, PARAMS.haircuts)
    assert h_thin[0][0] >= h_deep[0][0] - 1e-15
    assert h_thin[1][0] >= h_deep[1][0] - 1e-15
    assert 0.0 <= h_deep[0][0] <= h_deep[1][0] <= 1.0


@settings(max_examples=50, deadline=None)
@given(q=st.lists(st.floats(0, 1e9), min_size=2, max_size=20))
def test_slippage_never_falls_as_size_grows(q: list[float]) -> None:
    sizes = np.sort(np.array(q))
    slip = average_slippage(np.array(DEPTH["bps"], float), np.array(DEPTH["bid"]), sizes, 2.0)
    assert np.all(np.diff(slip) >= -1e-15)
    assert np.all((slip >= 0) & (slip <= 2.0 * 1000 / 1e4))


@settings(max_examples=25, deadline=None)
@given(seed=seeds)
def test_im_at_least_mm_at_least_zero(seed: int) -> None:
    rng = np.random.default_rng(seed)
    book = MarginBook(PARAMS, random_market(rng))
    for i in range(5):
        p = random_portfolio(rng, f"a{i}", int(rng.integers(0, 8)))
        book.load_portfolio(p.account, p.position_tuples(), p.collateral)
    report = book.margin()
    assert np.all(report.im >= report.mm - 1e-9)
    assert np.all(report.mm >= 0.0)
    assert np.all(report.equity_im <= report.equity_mm + 1e-9)
