"""The what-if (engine/whatif.py) against a plain reference: the portfolio rebuilt with the trades
applied by hand, or the market moved by hand, margined from scratch on a new book; and the book
it reads left exactly as it was."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import MarginBook
from engine.explain import explain
from engine.margin import AccountMargin
from engine.market import MarketSnapshot, VolSurface
from engine.offline import margin_of
from engine.params import RiskParams
from engine.portfolio import Portfolio, Position
from engine.whatif import (
    CHANGE_FIELDS,
    Changes,
    TradeFill,
    Transfer,
    WhatIfBook,
    WhatIfError,
    changes_from_mapping,
    what_if,
)
from tests.engine.random_books import random_instrument, random_market, random_portfolio

PARAMS = RiskParams()
FIGURES = ("equity", "equity_mm", "equity_im", "im", "mm", "es99", "var99", "liquidity_addon")
seeds = st.integers(0, 2**32 - 1)


def _same(got: AccountMargin, want: AccountMargin) -> None:
    """The same margin to 1e-9 (relative to the account's size) and the same state."""
    scale = max(1.0, abs(want.equity), want.im)
    for key in FIGURES:
        assert getattr(got, key) == pytest.approx(getattr(want, key), abs=1e-9 * scale), key
    assert got.state == want.state
    assert set(got.underlyings) == set(want.underlyings)


def _world(seed: int) -> tuple[MarketSnapshot, Portfolio]:
    """A random market and a random account in it."""
    rng = np.random.default_rng(seed)
    return random_market(rng), random_portfolio(rng, "acct", int(rng.integers(1, 6)))


def test_a_long_perpetual_bought_more_is_the_rebuilt_portfolio() -> None:
    market, _ = _world(7)
    start = Portfolio("a", {"USDC": 80_000.0}, (Position("BTC-PERPETUAL", 1.0, 90_000.0),))
    fills = (TradeFill("BTC-PERPETUAL", 1.0, 110_000.0, 5.0),)
    result = what_if(start, market, PARAMS, Changes(fills, (Transfer("USDC", -3_000.0),)))
    # bought 1 more at 110,000: 2 at an average 100,000; the fee leaves in USD
    rebuilt = Portfolio(
        "a", {"USDC": 77_000.0, "USD": -5.0}, (Position("BTC-PERPETUAL", 2.0, 100_000.0),)
    )
    _same(result.before.margin, margin_of(start, market, PARAMS))
    _same(result.after.margin, margin_of(rebuilt, market, PARAMS))
    assert result.change()["equity"] == pytest.approx(
        margin_of(rebuilt, market, PARAMS).equity - margin_of(start, market, PARAMS).equity
    )


def test_closing_a_future_realises_its_pnl_in_cash() -> None:
    market, _ = _world(8)
    start = Portfolio("a", {"USDC": 50_000.0}, (Position("ETH-27DEC26", -10.0, 4_100.0),))
    result = what_if(start, market, PARAMS, Changes((TradeFill("ETH-27DEC26", 10.0, 4_000.0),)))
    rebuilt = Portfolio("a", {"USDC": 50_000.0, "USD": 1_000.0})  # sold at 4,100, bought at 4,000
    _same(result.after.margin, margin_of(rebuilt, market, PARAMS))
    assert result.after.positions == []


def test_an_option_bought_pays_its_premium() -> None:
    market, _ = _world(9)
    start = Portfolio("a", {"USDC": 50_000.0})
    name = "BTC-26MAR27-100000-C"
    result = what_if(start, market, PARAMS, Changes((TradeFill(name, 2.0, 9_000.0),)))
    rebuilt = Portfolio("a", {"USDC": 50_000.0, "USD": -18_000.0}, (Position(name, 2.0, 9_000.0),))
    _same(result.after.margin, margin_of(rebuilt, market, PARAMS))
    (position,) = result.after.to_dict()["positions"]
    assert position["instrument"] == name and position["qty"] == 2.0
    assert position["value"] == pytest.approx(2.0 * position["mark"])


def _moved_by_hand(market: MarketSnapshot, und: str, move: float, vol: float) -> MarketSnapshot:
    """The market with one underlying's mark (and own marks) moved and its vols scaled."""
    old = market.underlyings[und]
    surface = old.vol_surface
    assert surface is not None
    moved = replace(
        old,
        mark=old.mark * (1 + move),
        ewma_vol=None if old.ewma_vol is None else old.ewma_vol * (1 + vol),
        vol_surface=VolSurface(surface.expiries, surface.log_moneyness, surface.vols * (1 + vol)),
    )
    marks = {n: p * (1 + move) if n.startswith(und + "-") else p for n, p in market.marks.items()}
    return replace(market.with_underlying(und, moved), marks=marks)


@settings(max_examples=15, deadline=None)
@given(seeds, st.sampled_from(["BTC", "ETH", "SOL"]), st.floats(-0.5, 0.5), st.floats(-0.5, 1.0))
def test_a_price_and_vol_move_is_the_market_moved_by_hand(
    seed: int, und: str, move: float, vol: float
) -> None:
    market, start = _world(seed)
    changes = Changes(moves={und: move}, vol_moves={und: vol})
    result = what_if(start, market, PARAMS, changes)
    _same(result.after.margin, margin_of(start, _moved_by_hand(market, und, move, vol), PARAMS))
    _same(result.before.margin, margin_of(start, market, PARAMS))


@settings(max_examples=25, deadline=None)
@given(seeds)
def test_no_change_is_now(seed: int) -> None:
    market, start = _world(seed)
    result = what_if(start, market, PARAMS, Changes())
    assert result.after.to_dict() == result.before.to_dict()
    assert all(v == 0.0 for k, v in result.change().items()), result.change()
    _same(result.before.margin, margin_of(start, market, PARAMS))


@settings(max_examples=25, deadline=None)
@given(seeds, st.floats(0.01, 5.0), st.booleans())
def test_a_fill_and_its_opposite_cancel(seed: int, qty: float, buy: bool) -> None:
    market, held = _world(seed)
    name, price = random_instrument(np.random.default_rng(seed + 1))
    # not held before: opened and closed at one price, it realises nothing
    start = replace(held, positions=tuple(p for p in held.positions if p.instrument != name))
    q = qty * (10_000 if name.endswith("-INV") else 1) * (1 if buy else -1)
    fills = (TradeFill(name, q, price), TradeFill(name, -q, price))
    result = what_if(start, market, PARAMS, Changes(fills))
    _same(result.after.margin, result.before.margin)


def test_a_what_if_leaves_the_book_untouched() -> None:
    market = random_market(np.random.default_rng(3))
    book = MarginBook(PARAMS, market)
    rng = np.random.default_rng(4)
    accounts = [random_portfolio(rng, f"a{i}", 4) for i in range(20)]
    for p in accounts:
        book.load_portfolio(p.account, p.position_tuples(), p.collateral)
    vectors = {
        n: (b.pnl.copy(), b.delta.copy(), b.value.copy()) for n, b in book.underlyings.items()
    }
    cost, collateral, table = book.cost.copy(), book.collateral.copy(), len(book.instruments)
    now = book.margin().account(5)
    name = "SOL-25JUN27-300-P"  # listed nowhere in the book yet
    changes = Changes(
        (TradeFill(name, -7.0, 20.0), TradeFill("BTC-PERPETUAL", 3.0, 99_000.0)),
        (Transfer("ETH", 4.0),),
    )
    calc = WhatIfBook()
    result = calc.what_if(book, accounts[5], changes)
    calc.what_if(book, accounts[6], Changes(moves={"BTC": -0.3}))
    assert len(book.instruments) == table and name not in book.instruments
    assert np.array_equal(book.cost, cost) and np.array_equal(book.collateral, collateral)
    for n, (pnl, delta, value) in vectors.items():
        b = book.underlyings[n]
        assert np.array_equal(b.pnl, pnl) and np.array_equal(b.delta, delta), n
        assert np.array_equal(b.value, value), n
    assert book.margin().account(5) == now
    _same(result.before.margin, now)  # the scratch's "now" is the book's own margin
    live = explain(book, "a5", "a5").to_dict()  # the same shape, to rounding
    shown = result.before.to_dict()
    assert shown.keys() == live.keys()
    assert [p["instrument"] for p in shown["positions"]] == [
        p["instrument"] for p in live["positions"]
    ]
    for mine, theirs in zip(shown["collateral"], live["collateral"], strict=True):
        assert mine.pop("asset") == theirs.pop("asset")
        assert mine == pytest.approx(theirs, rel=1e-12)


def test_a_scratch_row_is_emptied_exactly_between_accounts() -> None:
    market, _ = _world(11)
    book = MarginBook(PARAMS, market)
    calc = WhatIfBook()
    rng = np.random.default_rng(12)
    accounts = [random_portfolio(rng, f"a{i}", 5) for i in range(6)]
    first = [calc.what_if(book, p, Changes()).before.to_dict() for p in accounts]
    again = [calc.what_if(book, p, Changes()).before.to_dict() for p in reversed(accounts)]
    assert first == again[::-1]


def test_the_deposit_that_reaches_im_reaches_it() -> None:
    market, _ = _world(5)
    start = Portfolio("a", {"USDC": 9_000.0}, (Position("BTC-PERPETUAL", 1.0, 100_000.0),))
    now = what_if(start, market, PARAMS, Changes())
    assert now.before.margin.state != "HEALTHY"
    deposit = now.before.restore["deposit_to_im"]
    assert deposit["asset"] == "USD" and deposit["amount"] > 0
    paid = what_if(start, market, PARAMS, Changes(transfers=(Transfer("USD", deposit["amount"]),)))
    m = paid.after.margin
    assert m.equity_im == pytest.approx(m.im, rel=1e-9) and m.state == "HEALTHY"
    assert paid.after.restore == {
        "deposit_to_im": {"asset": "USD", "amount": 0.0},
        "liquidation": None,
    }


def test_an_account_in_liquidation_shows_the_planners_reduction() -> None:
    market, _ = _world(5)
    mark = np.float64(market.underlyings["BTC"].mark)  # the live market's marks are numpy's
    market = market.with_underlying("BTC", replace(market.underlyings["BTC"], mark=mark))
    start = Portfolio("a", {"USDC": 40_000.0}, (Position("BTC-PERPETUAL", 3.0, float(mark)),))
    shown = what_if(start, market, PARAMS, Changes()).after
    assert orjson.loads(orjson.dumps(shown.to_dict())) == shown.to_dict()  # plain JSON values
    assert shown.margin.state == "LIQUIDATION"
    plan = shown.restore["liquidation"]
    assert plan["target_met"] and plan["orders"]
    assert {o["instrument"] for o in plan["orders"]} == {"BTC-PERPETUAL"}
    assert all(o["side"] == "SELL" and o["qty"] < 0 for o in plan["orders"])
    binding = shown.binding
    assert binding["underlying"] == "BTC" and binding["worst_scenario"]["move"] < 0


def test_the_json_form_and_its_errors() -> None:
    parsed = changes_from_mapping(
        {
            "fills": [{"instrument": "BTC-PERPETUAL", "qty": -1, "price": 100_000, "fee": 2}],
            "transfers": [{"asset": "USDC", "amount": 5}],
            "moves": {"BTC": -0.1},
            "vol_moves": {"BTC": 0.2},
        }
    )
    assert parsed == Changes(
        (TradeFill("BTC-PERPETUAL", -1.0, 100_000.0, 2.0),),
        (Transfer("USDC", 5.0),),
        {"BTC": -0.1},
        {"BTC": 0.2},
    )
    assert changes_from_mapping({}) == Changes()
    for body, field in (
        ([], "body"),
        ({"fils": []}, "fils"),
        ({"fills": {}}, "fills"),
        ({"fills": [{"instrument": "X", "qty": "1", "price": 1}]}, "fills[0].qty"),
        ({"fills": [{"instrument": "X", "qty": 1, "price": math.inf}]}, "fills[0].price"),
        ({"fills": [{"instrument": "X", "qty": 1, "price": -1}]}, "fills[0].price"),
        ({"fills": [{"qty": 1, "price": 1}]}, "fills[0].instrument"),
        ({"transfers": [{"asset": "USDC", "amount": True}]}, "transfers[0].amount"),
        ({"moves": {"BTC": -1.0}}, "moves.BTC"),
        ({"vol_moves": {"BTC": math.nan}}, "vol_moves.BTC"),
    ):
        with pytest.raises(WhatIfError) as err:
            changes_from_mapping(body)
        assert err.value.field == field, body


def test_what_cannot_be_valued_names_its_field() -> None:
    market, start = _world(1)
    for changes, field in (
        (Changes((TradeFill("NOPE", 1.0, 1.0),)), "fills[0].instrument"),
        (Changes((TradeFill("DOGE-PERPETUAL", 1.0, 1.0),)), "fills[0].instrument"),
        (Changes(transfers=(Transfer("XYZ", 1.0),)), "transfers[0].asset"),
        (Changes(moves={"DOGE": 0.1}), "moves.DOGE"),
    ):
        with pytest.raises(WhatIfError) as err:
            what_if(start, market, PARAMS, changes)
        assert err.value.field == field
    assert set(CHANGE_FIELDS) <= set(FIGURES) | {"risk_requirement"}
