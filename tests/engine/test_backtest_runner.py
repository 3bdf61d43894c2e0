"""The backtest's run on the stream's book: a path that never moves has no exceptions, a model
asking nothing is red, a perpetual loses exactly its price move over the horizon, the kinds are
formed again at each roll, and the verdicts and their JSON hold together."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import orjson
import pytest

from engine.backtest.evaluate import verdicts
from engine.backtest.garch import START, garch_year
from engine.backtest.path import PricePath
from engine.backtest.portfolios import KINDS, file_spec, form_kind, gross_coins, kind_specs
from engine.backtest.procyclicality import worst_window
from engine.backtest.result import backtest
from engine.backtest.runner import run_params
from engine.params import RiskParams
from engine.portfolio import Portfolio, Position

DAY = 86400.0


def flat_path(days: int = 12) -> PricePath:
    """Prices and vols that never move."""
    steps = days + 1
    prices = np.tile([100_000.0, 4_000.0, 200.0], (steps, 1))
    vols = np.tile([0.6, 0.75, 1.0], (steps, 1))
    return PricePath("flat", START + np.arange(steps) * DAY, ("BTC", "ETH", "SOL"), prices, vols)


@pytest.fixture(scope="module")
def short_year() -> PricePath:
    """Sixty days of the built-in year: the first crash is in it."""
    return garch_year(11, days=60)


def test_a_path_that_never_moves_has_no_exceptions() -> None:
    path = flat_path()
    result = backtest(path, kind_specs(), [("default", RiskParams())])
    for v in result.verdicts[0]:
        assert v.exception_steps == () and v.exceptions_im == 0, v.portfolio
        assert v.zone == "green"
    assert np.all(result.runs[0].mm[:-2] > 0)


def test_a_model_asking_nothing_is_red(short_year: PricePath) -> None:
    run = run_params(short_year, kind_specs(), RiskParams(), "default", 2.0)
    nothing = replace(run, mm=np.zeros_like(run.mm), im=np.zeros_like(run.im))
    window = worst_window(short_year)
    found = verdicts(nothing, 0.99, window, short_year.index_after(5.0))
    assert [v.zone for v in found] == ["red"] * len(KINDS)


def test_a_perpetual_loses_its_price_move_over_the_horizon(short_year: PricePath) -> None:
    held = Portfolio("perp", {"USDC": 50_000.0}, (Position("BTC-PERPETUAL", 2.0, 100_000.0),))
    run = run_params(short_year, [file_spec(held)], RiskParams(), "default", 2.0)
    btc = short_year.prices[:, 0]
    expected = -2.0 * (btc[2:] - btc[:-2])
    assert run.loss[:-2, 0] == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert np.isnan(run.loss[-2:, 0]).all()
    assert run.notional[:, 0] == pytest.approx(2.0 * btc)


def test_the_crash_breaks_through_and_margin_rises(short_year: PricePath) -> None:
    run = run_params(short_year, kind_specs(), RiskParams(), "default", 2.0)
    crash = 45
    over = KINDS.index("overlevered")
    assert run.loss[crash, over] > run.mm[crash, over]
    rate = run.mm[:, over] / run.notional[:, over]
    assert rate[crash + 3] > 1.5 * rate[crash]
    assert run.psr[crash + 2, 0] > run.psr[crash, 0]


def test_kinds_are_formed_at_the_step_and_sized_alike() -> None:
    spots, vols = {"BTC": 50_000.0, "ETH": 2_000.0}, {"BTC": 0.6, "ETH": 0.8}
    for kind in KINDS:
        portfolio = form_kind(kind, kind, spots, vols, START)
        coins = gross_coins(portfolio, ("BTC", "ETH"))
        notional = sum(coins[u] * spots[u] for u in spots)
        assert 50_000.0 < notional < 300_000.0, kind
    maker = form_kind("market_maker", "m", spots, vols, START)
    assert any(p.instrument.endswith("-P") for p in maker.positions)


def test_the_json_holds_every_verdict_and_series(short_year: PricePath) -> None:
    result = backtest(short_year, kind_specs(), [("default", RiskParams())])
    data = orjson.loads(orjson.dumps(result.to_dict()))
    assert list(data["params"]) == ["default"]
    one = data["params"]["default"]["portfolios"]["overlevered"]
    assert one["exceptions_mm"] == len(one["exceptions"]) > 0
    assert len(one["series"]["mm"]) == short_year.steps
    assert one["basel_zone"] in ("green", "yellow", "red")
    assert data["stress_window"]["start"].startswith("2027-02")
