"""The risk-parameter set: the spec's defaults, loading from files and presets, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.params import AssetClass, RiskParams, ScenarioRole, VolState


def test_defaults_are_the_spec_numbers() -> None:
    p = RiskParams()
    assert (p.psr_for("BTC"), p.psr_for("ETH"), p.psr_for("SOL")) == (0.16, 0.18, 0.25)
    assert p.vol_shock.up == 0.50 and p.vol_shock.down == 0.25 and p.vol_shock.ref_days == 30
    assert (p.vol_shock.exponent_short, p.vol_shock.exponent_long) == (0.30, 0.13)
    assert (p.vol_shock.up_floor, p.vol_shock.down_floor) == (0.50, 0.05)
    c = p.contingencies
    assert (c.short_option, c.delta, c.basis) == (0.003, 0.01, 0.01)
    s = p.shortfall
    assert (s.draws, s.df, s.quantile, s.ewma_lambda) == (2000, 4.0, 0.99, 0.94)
    assert (s.floor_for("BTC"), s.floor_for("ETH"), s.floor_for("SOL")) == (0.60, 0.60, 0.90)
    h = p.haircuts
    assert h.base[AssetClass.STABLECOIN] == 0.02 and h.base[AssetClass.MAJOR] == 0.10
    assert h.base[AssetClass.MID_CAP] == 0.30 and h.base[AssetClass.LONG_TAIL] == 0.75
    assert (h.depeg_threshold, h.im_multiplier, h.beyond_last_level_multiplier) == (0.99, 1.25, 2.0)
    assert (p.margin.mm_risk_fraction, p.margin.mm_liquidity_fraction) == (0.80, 0.50)
    o = p.oracle
    assert (o.max_age_s, o.max_deviation, o.min_sources) == (5.0, 0.02, 2)
    liq = p.liquidation
    assert (liq.target_ratio, liq.slice_depth_fraction, liq.slice_depth_bps, liq.fee) == (
        1.10,
        0.10,
        100.0,
        0.005,
    )
    d = p.dynamic
    assert (d.vol_multiplier, d.horizon_days, d.max_daily_drop) == (2.5, 2.0, 0.10)
    assert p.status.ratio_change == 0.01 and p.status.margin_call_repeat_s == 60


def test_default_scenario_set_is_27_core_8_tail_21_es() -> None:
    scenarios = RiskParams().scenario_set.scenarios
    roles = [s.role for s in scenarios]
    assert roles.count(ScenarioRole.CORE) == 27
    assert roles.count(ScenarioRole.TAIL) == 8
    assert roles.count(ScenarioRole.ES) == 21
    tails = [s for s in scenarios if s.role is ScenarioRole.TAIL]
    assert [t.move for t in tails] == [-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(t.vol is VolState.UP and t.weight == "dampened" for t in tails)
    es = [s.move for s in scenarios if s.role is ScenarioRole.ES]
    assert es[0] == -0.5 and es[-1] == 0.5 and es[10] == 0.0


def test_correlations_follow_the_spec_table() -> None:
    corr = RiskParams().correlation
    assert corr.rho("BTC", "BTC") == 1.0
    assert corr.rho("BTC", "ETH") == corr.rho("ETH", "BTC") == 0.80
    assert corr.rho("BTC", "SOL") == 0.70 and corr.rho("SOL", "ETH") == 0.70
    assert corr.rho("SOL", "AVAX") == 0.60
    assert corr.max_credit == 0.50


def test_json_and_toml_round_trip(tmp_path: Path) -> None:
    p = RiskParams(version=7, psr={"BTC": 0.20, "ETH": 0.18})
    path = tmp_path / "p.json"
    path.write_text(p.to_json())
    assert RiskParams.load(path) == p
    toml = tmp_path / "p.toml"
    toml.write_text('name = "stress"\nversion = 3\npsr_default = 0.3\n[psr]\nBTC = 0.2\n')
    loaded = RiskParams.load(toml)
    assert (loaded.name, loaded.version, loaded.psr_for("BTC"), loaded.psr_for("XRP")) == (
        "stress",
        3,
        0.2,
        0.3,
    )


def test_span16_preset() -> None:
    p = RiskParams.preset("span16")
    core = [s for s in p.scenario_set.scenarios if s.role is not ScenarioRole.ES]
    assert len(core) == 16
    extremes = [s for s in core if abs(s.move) == 2]
    assert len(extremes) == 2 and all(s.weight == 0.35 and s.unit == "psr" for s in extremes)
    assert sorted({round(abs(s.move), 6) for s in core}) == [0.0, 0.333333, 0.666667, 1.0, 2.0]
    with pytest.raises(ValueError, match="unknown preset"):
        RiskParams.preset("nope")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"psr": {"BTC": 1.5}}, "psr"),
        ({"psr_default": float("nan")}, "psr_default"),
        ({"version": 0}, "version"),
        ({"oracle": {"min_sources": 0}}, "min_sources"),
        ({"haircuts": {"base": {"major": 0.1}}}, "base"),
        ({"correlation": {"pairs": {"BTC-ETH": 0.8}}}, "pairs"),
        ({"unknown_number": 1}, "unknown_number"),
        ({"scenario_set": {"scenarios": []}}, "scenario"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(patch: dict[str, object], field: str) -> None:
    data = json.loads(RiskParams().to_json())
    data.update(patch)
    with pytest.raises(ValidationError, match=field):
        RiskParams.from_mapping(data)


def test_parameter_sets_are_immutable() -> None:
    with pytest.raises(ValidationError):
        RiskParams().version = 2  # type: ignore[misc]
