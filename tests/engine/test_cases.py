"""Hand-computed cases, one per formula of margin-model.md sections 4 to 8."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.instruments import InstrumentArrays, parse_expiry, parse_instrument
from engine.market import MarketSnapshot, market_from_mapping
from engine.offline import margin_from_mappings
from engine.params import RiskParams
from engine.risk_arrays import Valuation, value_instruments
from engine.scenarios import ScenarioGrid, scenario_grid
from tests.engine.market_fixtures import DEPTH, market, portfolio


def margin(positions, collateral=None, params=None, **market_kw):
    """Offline margin of a portfolio in the fixture market."""
    return margin_from_mappings(portfolio(positions, collateral), market(**market_kw), params)


def _valued(name: str, params: RiskParams, grid: ScenarioGrid) -> tuple[MarketSnapshot, Valuation]:
    """One BTC instrument of the fixture market valued on a grid."""
    snap = market_from_mapping(market())
    val = value_instruments(
        InstrumentArrays.of([parse_instrument(name)]),
        np.array([np.nan]),
        snap.underlyings["BTC"],
        grid,
        snap.as_of,
        params.vol_shock,
    )
    return snap, val


def test_lone_perpetual_worst_loss_is_psr_times_notional() -> None:
    out = margin([("BTC-PERPETUAL", 2.0, 100_000.0)])
    btc = out.underlyings["BTC"]
    assert btc["worst_loss"] == pytest.approx(0.16 * 200_000.0, rel=1e-12)
    assert btc["directional"] == pytest.approx(0.16 * 200_000.0, rel=1e-12)
    assert btc["two_sided"] == 0.0
    assert btc["delta"] == pytest.approx(0.01 * 200_000.0)
    assert btc["short_option"] == 0.0 and btc["basis"] == 0.0


def test_lone_short_eth_perpetual_loses_on_the_up_side() -> None:
    out = margin([("ETH-PERPETUAL", -10.0, 4_000.0)])
    eth = out.underlyings["ETH"]
    assert eth["worst_loss"] == pytest.approx(0.18 * 40_000.0, rel=1e-12)
    assert eth["directional"] == pytest.approx(-0.18 * 40_000.0, rel=1e-12)


def test_btc_eth_hedge_earns_the_capped_correlation_credit() -> None:
    out = margin([("BTC-PERPETUAL", 1.0, 100_000.0), ("ETH-PERPETUAL", -25.0, 4_000.0)])
    x_btc, x_eth = 16_000.0, -18_000.0
    quad = x_btc**2 + x_eth**2 + 2 * 0.8 * x_btc * x_eth
    assert math.sqrt(quad) < 0.5 * (abs(x_btc) + abs(x_eth))
    assert out.directional_total == pytest.approx(0.5 * 34_000.0, rel=1e-12)
    two_longs = margin([("BTC-PERPETUAL", 1.0, 100_000.0), ("ETH-PERPETUAL", 25.0, 4_000.0)])
    expected = math.sqrt(x_btc**2 + x_eth**2 + 2 * 0.8 * x_btc * 18_000.0)
    assert two_longs.directional_total == pytest.approx(expected, rel=1e-12)
    assert expected < 34_000.0


def test_covered_call_needs_less_than_the_coin_alone() -> None:
    coin = margin([], {"BTC": 1.0, "USDC": 0.0})
    covered = margin([("BTC-27DEC26-110000-C", -1.0, 3_000.0)], {"BTC": 1.0, "USDC": 0.0})
    assert covered.underlyings["BTC"]["worst_loss"] < coin.underlyings["BTC"]["worst_loss"]
    assert covered.underlyings["BTC"]["short_option"] == pytest.approx(0.003 * 100_000.0)
    # the coin alone: a spot position, its worst loss is PSR x value
    assert coin.underlyings["BTC"]["worst_loss"] == pytest.approx(16_000.0, rel=1e-12)


def test_calendar_spread_pays_basis_not_direction() -> None:
    out = margin([("BTC-27DEC26", 1.0, 100_000.0), ("BTC-26MAR27", -1.0, 100_000.0)])
    btc = out.underlyings["BTC"]
    assert btc["worst_loss"] == pytest.approx(0.0, abs=1e-9)
    assert btc["basis"] == pytest.approx(0.01 * 100_000.0)
    assert btc["delta"] == pytest.approx(0.0, abs=1e-9)
    with_basis = margin(
        [("BTC-27DEC26", 1.0, 100_000.0), ("BTC-26MAR27", -1.0, 100_000.0)],
        marks={"BTC-27DEC26": 100_500.0, "BTC-26MAR27": 102_000.0},
    )
    b = with_basis.underlyings["BTC"]
    assert b["worst_loss"] == pytest.approx(0.16 * 1_500.0, rel=1e-9)
    assert b["basis"] == pytest.approx(0.01 * 100_500.0)


def test_short_straddle_is_two_sided() -> None:
    out = margin([("BTC-27DEC26-100000-C", -1.0, 5_000.0), ("BTC-27DEC26-100000-P", -1.0, 5_000.0)])
    btc = out.underlyings["BTC"]
    assert btc["two_sided"] > 0.0
    assert btc["two_sided"] + abs(btc["directional"]) == pytest.approx(btc["worst_loss"])
    # one strike and expiry: two short contracts net to 2 x 0.3% x S
    assert btc["short_option"] == pytest.approx(2 * 0.003 * 100_000.0)
    long_put = margin(
        [("BTC-27DEC26-100000-C", -1.0, 5_000.0), ("BTC-27DEC26-100000-P", 1.0, 5_000.0)]
    )
    assert long_put.underlyings["BTC"]["short_option"] == 0.0


def test_depegged_stablecoin_haircut_adds_the_gap() -> None:
    assets = {"USDC": {"price": 0.95, "asset_class": "stablecoin"}}
    out = margin([], {"USDC": 100_000.0}, assets=assets)
    assert out.haircuts["USDC"]["haircut"] == pytest.approx(0.02 + 0.05)
    assert out.equity == pytest.approx(95_000.0)
    assert out.equity_mm == pytest.approx(95_000.0 * (1 - 0.07))
    assert out.equity_im == pytest.approx(95_000.0 * (1 - 1.25 * 0.07))
    pegged = margin([], {"USDC": 100_000.0})
    assert pegged.haircuts["USDC"]["haircut"] == pytest.approx(0.02)


def test_thin_book_raises_haircut_and_liquidity_addon() -> None:
    thin = {k: [v / 10 for v in vals] if k != "bps" else vals for k, vals in DEPTH.items()}
    args = ([("BTC-PERPETUAL", 300.0, 100_000.0)], {"USDC": 5e7, "BTC": 500.0})
    deep = margin(*args, depth=DEPTH)
    shallow = margin(*args, depth=thin)
    assert shallow.haircuts["BTC"]["haircut"] > deep.haircuts["BTC"]["haircut"] > 0.10
    assert shallow.liquidity_addon > deep.liquidity_addon > 0.0
    assert shallow.im > deep.im
    # 500 BTC = 50M into the bid: levels 2/6/15/40M at 10/25/50/100 bps, then 100-200 bps
    cum = [0, 2e6, 6e6, 15e6, 40e6, 90e6]
    bps = [0, 10, 25, 50, 100, 200]
    area = sum(
        (min(5e7, cum[i + 1]) - cum[i])
        * (
            bps[i]
            + bps[i]
            + (bps[i + 1] - bps[i]) * (min(5e7, cum[i + 1]) - cum[i]) / (cum[i + 1] - cum[i])
        )
        / 2
        for i in range(5)
        if cum[i] < 5e7
    )
    assert deep.haircuts["BTC"]["haircut"] == pytest.approx(0.10 + area / 5e7 / 1e4)


def test_span16_preset_on_a_lone_future() -> None:
    params = RiskParams.preset("span16")
    grid = scenario_grid(params, "BTC")
    snap, val = _valued("BTC-26MAR27", params, grid)
    t = (parse_expiry("26MAR27") - snap.as_of) / (365 * 86400)
    f = 100_000.0 * math.exp(0.0 * t)
    scan = 0.16 * f
    core = grid.weights == 1.0
    fractions = sorted(set(np.round(np.abs(val.risk[0][core]) / scan, 12)))
    assert fractions == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    extreme = np.abs(grid.moves) > 0.16 + 1e-12
    extremes = (grid.weights * np.abs(val.risk[0]))[extreme & (grid.weights > 0)]
    assert extremes == pytest.approx([0.35 * 2 * scan] * 2)
    out = margin([("BTC-26MAR27", 1.0, 100_000.0)], params=params)
    assert out.underlyings["BTC"]["worst_loss"] == pytest.approx(scan, rel=1e-12)


def test_a_wide_scan_falls_to_zero_not_below() -> None:
    """span16's tail moves are 2 x PSR: with a dynamic PSR of 0.6 the fall is to zero (the
    largest there is), and a put is worth its strike there (the fixture's rate is 0), not NaN."""
    params = RiskParams.preset("span16")
    grid = scenario_grid(params, "BTC", psr=0.6)
    assert grid.moves.min() == -1.0 and np.all(np.isfinite(grid.weights))
    _, val = _valued("BTC-26MAR27-100000-P", params, grid)
    assert np.all(np.isfinite(val.risk))
    at_zero = val.risk[0][grid.moves == -1.0]
    assert at_zero == pytest.approx(100_000.0 - val.value[0], rel=1e-9)  # the strike at zero


def test_states_follow_equity() -> None:
    healthy = margin([("BTC-PERPETUAL", 1.0, 100_000.0)], {"USDC": 100_000.0})
    assert healthy.state == "HEALTHY"
    call = margin([("BTC-PERPETUAL", 1.0, 100_000.0)], {"USDC": 16_000.0})
    assert call.equity_im < call.im and call.equity_mm >= call.mm
    assert call.state == "MARGIN_CALL"
    liq = margin([("BTC-PERPETUAL", 1.0, 100_000.0)], {"USDC": 12_000.0})
    assert liq.state == "LIQUIDATION"
    bankrupt = margin([], {"USDC": -1_000.0})
    assert bankrupt.state == "BANKRUPT"
    underwater = margin([("BTC-PERPETUAL", 1.0, 120_000.0)], {"USDC": 10_000.0})
    assert underwater.equity < 0 and underwater.state == "BANKRUPT"


def test_mm_is_the_spec_fractions_of_risk_and_liquidity() -> None:
    out = margin([("BTC-PERPETUAL", 300.0, 100_000.0)], depth=DEPTH)
    risk = max(out.scenario_requirement, out.es99)
    assert out.im == pytest.approx(risk + out.liquidity_addon)
    assert out.mm == pytest.approx(0.8 * risk + 0.5 * out.liquidity_addon)


def test_inverse_perpetual_equity_and_risk() -> None:
    # 100,000 USD notional long at 80,000: 1.25 coins of exposure, PnL (1/80k - 1/100k) x 100k
    out = margin([("BTC-PERPETUAL-INV", 100_000.0, 80_000.0)], {"USDC": 0.0})
    assert out.equity == pytest.approx(100_000.0 * (1 / 80_000 - 1 / 100_000) * 100_000)
    assert out.underlyings["BTC"]["delta_notional"] == pytest.approx(125_000.0)
    assert out.underlyings["BTC"]["worst_loss"] == pytest.approx(0.16 * 125_000.0)


def test_es_is_reported_and_binds_with_a_low_psr() -> None:
    params = RiskParams(psr={"BTC": 0.02, "ETH": 0.02})
    out = margin([("BTC-PERPETUAL", 1.0, 100_000.0)], params=params)
    assert out.es99 > out.scenario_requirement
    assert out.var99 <= out.es99
    assert out.im >= out.es99
