"""The matching-engine simulator: price impact from the depth curve, limits, ADL, once per id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import black76
from engine.instruments import parse_expiry
from streams import records as r
from streams.tools.simulator.matching import MatchingEngine

TS = datetime(2026, 11, 24, 8, tzinfo=UTC)
BPS = [10.0, 100.0]
CUM = [1e6, 1e7]  # 1M within 10 bps, 10M within 100 bps


def _engine() -> MatchingEngine:
    eng = MatchingEngine()
    for source in ("a", "b", "c"):
        for und, px in (("BTC", 100_000.0), ("USDC", 1.0)):
            eng.on_market(
                r.OraclePrice(source=source, underlying=und, price=px, weight=1.0, ts=TS), source
            )
    eng.on_market(
        r.BookDepth(underlying="BTC", mid=100_000.0, bps=BPS, bid=CUM, ask=CUM, ts=TS), "d"
    )
    eng.on_market(
        r.VolSurfaceRecord(
            underlying="BTC",
            expiries=[0.1, 1.0],
            log_moneyness=[-0.2, 0.0, 0.2],
            vols=[[0.6, 0.6, 0.6], [0.6, 0.6, 0.6]],
            ts=TS,
        ),
        "v",
    )
    for name, kind in (("BTC-PERPETUAL", "PERPETUAL"),):
        eng.on_market(r.InstrumentRecord(name=name, kind=kind, underlying="BTC", ts=TS), name)
    return eng


def _order(qty: float, limit: float, side: str = "SELL", name: str = "BTC-PERPETUAL"):
    return r.LiquidationOrder(
        order_id=f"o-{qty}-{limit}-{name}",
        account="x",
        instrument=name,
        side=side,
        qty=qty,
        limit_price=limit,
        reason="MM_BREACH",
        sequence=0,
        ts=TS,
    )


def _slip(notional: float) -> float:
    """The average bps of the test curve by hand: x(D) linear through (0,0),(1M,10),(10M,100)."""
    if notional <= 1e6:
        return 10.0 * notional / 1e6 / 2.0 / 1e4
    area = 1e6 * 10.0 / 2.0 + (notional - 1e6) * (10.0 + 10.0 + 90.0 * (notional - 1e6) / 9e6) / 2
    return area / notional / 1e4


def test_a_sell_fills_at_the_mark_less_the_average_slippage_with_the_fee() -> None:
    eng = _engine()
    (fill,) = eng.execute_liquidation(_order(50.0, 90_000.0), TS).fills
    assert fill.qty == 50.0 and fill.liquidity.value == "LIQUIDATION"
    assert fill.price == pytest.approx(100_000.0 * (1 - _slip(5e6)), rel=1e-12)
    assert fill.fee == pytest.approx(0.005 * 5e6)
    assert fill.fill_id == "fill-o-50.0-90000.0-BTC-PERPETUAL"


def test_the_limit_caps_the_quantity_never_the_price() -> None:
    eng = _engine()
    limit = 100_000.0 * (1 - _slip(2e6))  # only 20 contracts fit within it
    execution = eng.execute_liquidation(_order(50.0, limit), TS)
    (fill,) = execution.fills
    assert fill.qty == pytest.approx(20.0, rel=1e-6)
    assert fill.price >= limit * (1 - 1e-12)
    assert execution.unfilled == pytest.approx(30.0, rel=1e-5)
    buy = eng.execute_liquidation(_order(5.0, 100_000.0, side="BUY"), TS)
    assert buy.fills == [] and buy.unfilled == 5.0  # any impact is past a limit at the mark


def test_an_order_executes_once() -> None:
    eng = _engine()
    order = _order(1.0, 90_000.0)
    assert eng.execute_liquidation(order, TS).fills
    assert eng.execute_liquidation(order, TS).fills == []


def test_a_coin_sells_on_its_own_book_and_an_option_at_its_premium() -> None:
    eng = _engine()
    price, unit, depth = eng.price("BTC")
    assert (price, unit) == (100_000.0, 100_000.0) and depth is not None
    expiry = parse_expiry("27DEC26")
    eng.on_market(
        r.InstrumentRecord(
            name="BTC-27DEC26-110000-C",
            kind="OPTION",
            underlying="BTC",
            expiry=datetime.fromtimestamp(expiry, tz=UTC),
            strike=110_000.0,
            option_type="CALL",
            ts=TS,
        ),
        "opt",
    )
    premium, unit, _ = eng.price("BTC-27DEC26-110000-C")
    t = (expiry - TS.timestamp()) / (365 * 86400)
    assert premium == pytest.approx(float(black76.price(100_000.0, 110_000.0, 0.6, t, True)))
    assert unit == premium


def test_an_adl_order_is_two_fills_at_its_price() -> None:
    eng = _engine()
    order = r.AdlOrder(
        adl_id="adl-1",
        account="winner",
        instrument="BTC-PERPETUAL",
        side="BUY",
        qty=2.0,
        price=101_000.0,
        counterparty_account="broke",
        amount=2_000.0,
        ts=TS,
    )
    fills = eng.execute_adl(order, TS).fills
    assert [(f.account, f.side.value, f.qty, f.price) for f in fills] == [
        ("winner", "BUY", 2.0, 101_000.0),
        ("broke", "SELL", 2.0, 101_000.0),
    ]
    assert all(f.liquidity.value == "ADL" and f.fee == 0.0 for f in fills)
    assert eng.execute_adl(order, TS).fills == []
