"""The liquidation planner: just enough, most risk-heavy first, hedges together, bounded prices."""

from __future__ import annotations

import pytest

from engine.book import MarginBook
from engine.liquidation import LiquidationPlanner
from engine.market import market_from_mapping
from engine.params import RiskParams
from tests.engine.market_fixtures import DEPTH, market

PARAMS = RiskParams()


def _book(
    positions: list[tuple[str, float, float]],
    collateral: dict[str, float],
    params: RiskParams = PARAMS,
    **market_kw: object,
) -> MarginBook:
    book = MarginBook(params, market_from_mapping(market(depth=DEPTH, **market_kw)))
    book.load_portfolio("a", positions, collateral)
    return book


def _ratio_after(positions, collateral, cut: float) -> float:
    """E_mm - 1.1 MM after closing `cut` of a lone position at mark, with fee and slippage."""
    ((name, qty, _entry),) = positions
    book = _book(positions, collateral)
    plan_book = LiquidationPlanner(book)
    state = plan_book._copy("a")
    from engine.liquidation import _Leg

    plan_book._execute(state, [_Leg(name, -qty * cut, False)], record=None)
    _, e_mm, mm = state.margin()
    return e_mm - 1.1 * mm


def test_a_perpetual_only_account_is_reduced_just_enough() -> None:
    positions = [("BTC-PERPETUAL", 600.0, 100_000.0)]
    collateral = {"USDC": 9_000_000.0}
    book = _book(positions, collateral)
    before = book.margin().account(0)
    assert before.equity_mm < 1.1 * before.mm
    plan = LiquidationPlanner(book).plan("a")
    assert plan.target_met and plan.orders
    closed = -sum(o.qty for o in plan.orders)
    # brute force over the closed fraction: the smallest fraction that meets the target
    fractions = [i / 2000 for i in range(2001)]
    needed = next(f for f in fractions if _ratio_after(positions, collateral, f) >= 0)
    assert closed / 600.0 == pytest.approx(needed, abs=1 / 2000 + 1e-3)
    assert plan.equity_mm >= 1.1 * plan.mm - 1e-6
    # every slice but the last is a full slice: 10% of the depth within 100 bps
    full = 0.10 * 40e6 / 100_000.0
    assert all(abs(o.qty) == pytest.approx(full) for o in plan.orders[:-1])


def test_orders_never_cross_the_bankruptcy_price() -> None:
    book = _book([("BTC-PERPETUAL", 300.0, 100_000.0)], {"USDC": 4_000_000.0})
    plan = LiquidationPlanner(book).plan("a")
    equity = book.margin().account(0).equity
    for order in plan.orders:
        assert order.side == "SELL"
        assert order.limit_price < 100_000.0
        assert order.limit_price >= 100_000.0 - equity / abs(order.qty) - 1e-6


def test_a_delta_neutral_pair_is_reduced_together() -> None:
    positions = [("BTC-PERPETUAL", 400.0, 100_000.0), ("BTC-27DEC26", -400.0, 101_000.0)]
    # a 0.1% fee: closing a hedged pair (1% basis contingency) is then worth its cost
    cheap = RiskParams.model_validate({"liquidation": {"fee": 0.001}})
    book = _book(positions, {"USDC": 400_000.0}, cheap, marks={"BTC-27DEC26": 101_000.0})
    out = book.margin().account(0)
    assert out.equity_mm < 1.1 * out.mm
    plan = LiquidationPlanner(book).plan("a")
    assert plan.orders
    by_name: dict[str, float] = {}
    for o in plan.orders:
        by_name[o.instrument] = by_name.get(o.instrument, 0.0) + o.qty
    assert set(by_name) == {"BTC-PERPETUAL", "BTC-27DEC26"}
    assert by_name["BTC-PERPETUAL"] == pytest.approx(-by_name["BTC-27DEC26"])


def test_a_covered_call_buys_the_call_back_before_selling_the_coin() -> None:
    # 5 coins against 30 short calls: the calls carry the risk, so buying them back lowers the
    # requirement more per USD than selling the coin (which would uncover them further)
    positions = [("BTC-27DEC26-100000-C", -30.0, 5_000.0)]
    book = _book(positions, {"BTC": 5.0, "USDC": 120_000.0})
    out = book.margin().account(0)
    assert out.equity_mm < 1.1 * out.mm
    plan = LiquidationPlanner(book).plan("a")
    assert plan.orders and plan.orders[0].instrument == "BTC-27DEC26-100000-C"
    assert plan.orders[0].side == "BUY"
    assert all(o.instrument != "BTC" for o in plan.orders)


def test_a_healthy_account_gets_no_orders_and_a_negative_one_is_bankrupt() -> None:
    assert (
        not LiquidationPlanner(_book([("BTC-PERPETUAL", 1.0, 100_000.0)], {"USDC": 1e6}))
        .plan("a")
        .orders
    )
    plan = LiquidationPlanner(_book([("BTC-PERPETUAL", 1.0, 150_000.0)], {"USDC": 1_000.0})).plan(
        "a"
    )
    assert plan.bankrupt and not plan.orders


def test_an_account_with_no_position_converts_its_stablecoin_to_repay_usd() -> None:
    """Left with a USD debt against USDC after its positions are gone, an account is below MM
    only through the USDC haircut: the plan sells the USDC to USD (section 9's coin sale),
    which clears the haircut, instead of leaving it in LIQUIDATION with nothing to close."""
    book = _book([], {"USD": -2_999.0, "USDC": 3_000.0})
    out = book.margin().account(0)
    assert out.mm == 0.0 and out.equity == pytest.approx(1.0)
    assert out.equity_mm < 0.0 and out.state == "LIQUIDATION"
    plan = LiquidationPlanner(book).plan("a")
    assert [(o.instrument, o.side) for o in plan.orders] == [("USDC", "SELL")]
    # all of it: with equity of 1 USD, no sale pays the 0.5% fee and meets the target; the
    # fee the fund takes comes back to the account as a small claim
    assert plan.orders[0].qty == -3_000.0 and not plan.target_met
