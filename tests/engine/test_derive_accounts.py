"""Derive's PMRM_2 on the book's accounts (engine/derive/accounts.py): a set selecting
``derive-pmrm2`` margins an account as PMRM_2 portfolios, and the book's report states Derive's
margins (E - IM and E - MM); sets of our model are untouched."""

from __future__ import annotations

import math

import pytest

from engine.arrays import YEAR_SECONDS
from engine.book import MarginBook
from engine.derive.accounts import RESIDUAL, account_portfolios
from engine.derive.model import margin
from engine.derive.portfolio import OptionFeed, OptionHolding, Portfolio
from engine.market import market_from_mapping
from engine.offline import margin_from_mappings
from engine.params import RiskParams
from engine.portfolio import portfolio_from_mapping
from tests.engine.market_fixtures import market, portfolio

CALL = "BTC-27DEC26-110000-C"


def _book_of(positions: list[tuple[str, float, float]], collateral: dict[str, float]) -> MarginBook:
    """A book (what a worker margins with) holding one account under the derive-pmrm2 preset."""
    assets = {
        "USDC": {"price": 1.0, "asset_class": "stablecoin"},
        "SOL": {"price": 150.0, "asset_class": "mid_cap"},
    }
    snapshot = market_from_mapping(market(marks={"BTC-PERPETUAL": 100_050.0}, assets=assets))
    book = MarginBook(RiskParams.preset("derive-pmrm2"), snapshot)
    parsed = portfolio_from_mapping(portfolio(positions, collateral))
    book.load_portfolio(
        parsed.account, [(p.instrument, p.qty, p.entry_price) for p in parsed.positions], collateral
    )
    return book


def _expected_btc(book: MarginBook) -> Portfolio:
    """The BTC portfolio built by hand from the market: the call, the perp, the BTC coin."""
    snap = book.market
    btc = snap.underlyings["BTC"]
    inst = book.instruments.get(CALL)
    assert inst.expiry is not None and btc.vol_surface is not None
    seconds = round(inst.expiry - snap.as_of)
    forward = float(btc.forward(seconds / YEAR_SECONDS))
    vol = float(btc.vol_surface.vol(seconds / YEAR_SECONDS, math.log(110_000.0 / forward)))
    return Portfolio(
        cash=0.0,
        collaterals=[
            {
                "name": "BTC",
                "amount": 2.0,
                "price": 100_000.0,
                "confidence": 1.0,
                "risk_cancelling": True,
                "im_haircut": 0.01,
                "mm_haircut": 0.02,
            }
        ],
        spot_price=100_000.0,
        spot_confidence=1.0,
        perp_position=-1.5,
        perp_price=100_050.0,
        perp_confidence=1.0,
        perp_pnl=-1.5 * (100_050.0 - 99_000.0),
        perp_funding=0.0,
        stable_price=1.0,
        options=[
            OptionHolding(expiry_s=seconds, strike=110_000.0, is_call=True, vol=vol, amount=-2.0)
        ],
        feeds=[
            OptionFeed(
                expiry_s=seconds,
                forward=forward,
                forward_confidence=1.0,
                rate=0.0,
                rate_confidence=1.0,
                vol_confidence=1.0,
            )
        ],
    )


def test_an_account_is_margined_as_pmrm2_portfolios() -> None:
    positions = [("BTC-PERPETUAL", -1.5, 99_000.0), (CALL, -2.0, 2_000.0)]
    book = _book_of(positions, {"USDC": 50_000.0, "BTC": 2.0, "SOL": 10.0})
    built = account_portfolios(book, 0)
    assert set(built) == {"BTC", RESIDUAL}
    assert built["BTC"] == _expected_btc(book)
    residual = built[RESIDUAL]
    assert residual.cash == 50_000.0  # USDC: no Derive haircut given, so cash
    sol = residual.collaterals[0]
    assert (sol.name, sol.amount, sol.price, sol.risk_cancelling) == ("SOL", 10.0, 150.0, False)
    assert (sol.im_haircut, sol.mm_haircut) == (0.1, 0.35)  # the preset's default
    derive = RiskParams.preset("derive-pmrm2").derive
    assert derive is not None
    btc, rest = margin(built["BTC"], derive), margin(residual, derive)
    report = book.margin()
    equity = float(report.equity[0])
    assert equity == pytest.approx(btc.portfolio_mtm + rest.portfolio_mtm, rel=1e-12)
    assert equity - float(report.im[0]) == pytest.approx(btc.im + rest.im, rel=1e-12)
    assert equity - float(report.mm[0]) == pytest.approx(btc.mm + rest.mm, rel=1e-12)


def test_the_equity_is_ours_and_the_requirement_derives() -> None:
    positions = [
        ("BTC-PERPETUAL", -1.5, 99_000.0),
        (CALL, -2.0, 2_000.0),
        ("ETH-PERPETUAL", 3.0, 4_010.0),
    ]
    collateral = {"USDC": 300_000.0, "BTC": 1.0}
    ours = margin_from_mappings(portfolio(positions, collateral), market())
    derive = margin_from_mappings(
        portfolio(positions, collateral), market(), RiskParams.preset("derive-pmrm2")
    )
    assert derive.equity == pytest.approx(ours.equity, rel=1e-12)
    assert derive.params_version == "derive-pmrm2@1" and ours.params_version == "default@1"
    assert derive.es99 == 0.0 and ours.es99 > 0.0
    assert set(derive.underlyings) == {"BTC", "ETH"}
    assert derive.state == "HEALTHY" and 0.0 < derive.mm < derive.im


@pytest.mark.parametrize(
    ("usdc", "state"), [(45_000.0, "LIQUIDATION"), (75_000.0, "MARGIN_CALL"), (95_000.0, "HEALTHY")]
)
def test_states_follow_derives_margins(usdc: float, state: str) -> None:
    """Five short calls: E - MM < 0 is LIQUIDATION, E - IM < 0 <= E - MM is MARGIN_CALL."""
    report = margin_from_mappings(
        portfolio([(CALL, -5.0, 2_000.0)], {"USDC": usdc}),
        market(),
        RiskParams.preset("derive-pmrm2"),
    )
    assert report.state == state
    assert report.equity > 0 and report.mm < report.im
