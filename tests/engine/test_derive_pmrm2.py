"""Derive's PMRM_2 (engine/derive) against Derive's own published cases, every figure at 1e-8
relative, in-process; its formulas against hand-computed values; `spma reproduce derive` from a
shell (exit 0, 1 on a tampered Result, 2 naming the file and the field of a broken case)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine.derive.cases import CaseError, known_keys, read_case
from engine.derive.contingencies import naked_shorts
from engine.derive.model import margin
from engine.derive.params import Pmrm2Params, VolShockParams
from engine.derive.portfolio import Portfolio
from engine.derive.pricing import option_prices
from engine.derive.report import differences, figures
from engine.derive.shocks import (
    confidence_contingency,
    discount_factor,
    forward_portions,
    k_star,
    skew_multiplier,
    stable_loss_factor,
    static_discounts,
    vol_shock_multipliers,
)
from engine.params import MarginModel, RiskParams

ROOT = Path(__file__).resolve().parents[2]
CASE_DIR = ROOT.parent / "shared" / "data" / "derive-pmrm2"
CASES = sorted(CASE_DIR.glob("test_*.json"))
SAMPLE = CASE_DIR / "test_61_general_general_test_1.json"
YEAR = 365 * 86400.0


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_matches_derives_result(path: Path) -> None:
    case = read_case(path)
    ours = figures(case.name, margin(case.portfolio, case.params), case.params)
    assert case.result is not None
    assert differences(ours, case.result) == []


def _params() -> Pmrm2Params:
    """A case's parameter set (Derive's published one)."""
    data = json.loads(SAMPLE.read_text())["Parameters"]
    return Pmrm2Params.model_validate(known_keys(Pmrm2Params, data))


needs_cases = pytest.mark.skipif(not SAMPLE.is_file(), reason=f"no Derive cases in {CASE_DIR}")


# ---- formulas against hand-computed values ----


def test_discount_floors_a_negative_rate_at_zero() -> None:
    assert float(discount_factor(0.05, YEAR)) == pytest.approx(math.exp(-0.05), rel=1e-15)
    assert float(discount_factor(-0.05, YEAR)) == 1.0


def test_forward_fixes_over_the_settlement_window() -> None:
    fixed, variable = forward_portions(2000.0, 900.0)
    assert (float(fixed), float(variable)) == (1000.0, 1000.0)
    fixed, variable = forward_portions(2000.0, 3600.0)
    assert (float(fixed), float(variable)) == (0.0, 2000.0)


def test_vol_shocks_scale_with_time_to_expiry() -> None:
    params = VolShockParams(
        vol_range_up=0.5,
        vol_range_down=0.275,
        short_term_power=0.3,
        long_term_power=0.13,
        dte_floor_days=1.0,
        min_vol_up_shock=0.45,
    )
    up, down = vol_shock_multipliers([7 * 86400.0, 90 * 86400.0, 3600.0], params)
    short, long = (30 / 7) ** 0.3, (30 / 90) ** 0.13
    floored = 30.0**0.3  # an hour counts as the one-day floor
    assert up == pytest.approx([1 + 0.5 * short, 1 + 0.5 * long, 1 + 0.5 * floored], rel=1e-14)
    assert down == pytest.approx([1 - 0.275 * short, 1 - 0.275 * long, 1 - 0.275 * floored])
    _, wide = vol_shock_multipliers(3600.0, params.model_copy(update={"vol_range_down": 1.0}))
    assert float(wide) == 0.0  # floored at 0, never a negative vol


def test_static_discounts_charge_time_value_and_cap_shorts_at_the_undiscounted_value() -> None:
    margin_params = _params().margin.model_copy(
        update={
            "long_base_static_discount": 0.95,
            "short_base_static_discount": 1.04,
            "long_rate_mult_scale": 1.0,
            "long_rate_add_scale": 0.08,
            "short_rate_mult_scale": 0.5,
            "short_rate_add_scale": 0.08,
        }
    )
    pos, neg = static_discounts(0.05, YEAR, math.exp(-0.05), margin_params)
    assert float(pos) == pytest.approx(0.95 * math.exp(-0.13), rel=1e-14)
    assert float(neg) == pytest.approx(min(math.exp(0.05), 1.04 * math.exp(0.105)), rel=1e-14)
    _, neg_short = static_discounts(0.05, 86400.0, math.exp(-0.05 / 365), margin_params)
    assert float(neg_short) == pytest.approx(math.exp(0.05 / 365), rel=1e-14)


@needs_cases
def test_skew_multiplier_and_k_star() -> None:
    skew = _params().skew_shock.model_copy(
        update={"width_scale": 3.0, "vol_param_static": 2.5, "vol_param_scale": -0.9}
    )
    assert float(k_star(0.5, skew)) == pytest.approx(0.5 * 3.0 * (2.5 - 0.45), rel=1e-15)
    assert float(k_star(0.0, skew)) == skew.min_k_star
    assert skew_multiplier([0.1, 1.0, -0.1, -1.0], 4.0, 0.2) == pytest.approx([3, 5, -1, -3])


def test_naked_shorts_net_against_longs_at_the_same_strike() -> None:
    assert naked_shorts([100.0, 100.0, 200.0], [-2.0, 1.0, -3.0]) == 4.0
    assert naked_shorts([100.0, 100.0], [-1.0, -2.0]) == 3.0
    assert naked_shorts([100.0, 100.0], [3.0, -2.0]) == 0.0
    assert naked_shorts([100.0], [5.0]) == 0.0


@needs_cases
def test_confidence_and_peg_contingencies() -> None:
    other = _params().other_contingency  # threshold 0.55, margin 1, peg 0.98 x 2
    assert float(confidence_contingency(0.4, 1000.0, other)) == pytest.approx(600.0)
    assert float(confidence_contingency(0.6, 1000.0, other)) == 0.0
    assert stable_loss_factor(1.0, 0.56, other, initial=True) == pytest.approx(1.84)
    assert stable_loss_factor(0.8, 0.56, other, initial=False) == 0.8


def test_discounted_black76_at_the_money() -> None:
    n = 0.5 * (1 + math.erf(0.1 / math.sqrt(2)))  # N(sigma sqrt(T) / 2), sigma 0.2, T 1
    call, put = option_prices(100.0, 100.0, 0.2, YEAR, 0.95, [True, False])
    assert float(call) == pytest.approx(100 * (2 * n - 1) * 0.95, rel=1e-12)
    assert float(put) == pytest.approx(float(call), rel=1e-12)


# ---- the model on small portfolios, and the parameters' checks ----


def _portfolio(**fields: Any) -> Portfolio:
    """A portfolio of cash only, with the given fields replaced."""
    base: dict[str, Any] = {
        "cash": 1000.0,
        "collaterals": [],
        "spot_price": 2000.0,
        "spot_confidence": 1.0,
        "perp_position": 0.0,
        "perp_price": 2000.0,
        "perp_confidence": 1.0,
        "perp_pnl": 0.0,
        "perp_funding": 0.0,
        "stable_price": 1.0,
        "options": [],
        "feeds": [],
    }
    return Portfolio.model_validate(base | fields)


@needs_cases
def test_cash_alone_is_its_own_margin() -> None:
    result = margin(_portfolio(), _params())
    assert (result.im, result.mm, result.portfolio_mtm) == (1000.0, 1000.0, 1000.0)


@needs_cases
def test_a_long_perp_loses_the_worst_spot_drop_times_the_loss_factor() -> None:
    params = _params()
    result = margin(_portfolio(perp_position=1.0, cash=0.0), params)
    worst = min(
        (s.spot_shock - 1) * s.dampening * 2000.0 for s in params.scenarios if not s.is_skew
    )
    mm = worst * params.margin.mm_factor - 2000.0 * params.other_contingency.mm_perp_percent
    assert result.mm == pytest.approx(mm, rel=1e-12)
    assert float(np.min(result.scenario_pnls)) == pytest.approx(worst, rel=1e-12)


@needs_cases
def test_skew_scenarios_must_be_single_and_at_an_unmoved_spot() -> None:
    data = known_keys(Pmrm2Params, json.loads(SAMPLE.read_text())["Parameters"])
    moved = [*data["Scenarios"][:-1], {**data["Scenarios"][-1], "SpotShock": 1.18}]
    with pytest.raises(ValidationError, match="SpotShock 1"):
        Pmrm2Params.model_validate({**data, "Scenarios": moved})
    twice = [*data["Scenarios"], data["Scenarios"][-1]]
    with pytest.raises(ValidationError, match="more than one"):
        Pmrm2Params.model_validate({**data, "Scenarios": twice})


@needs_cases
def test_losses_split_into_the_regular_grid_tails_and_skews() -> None:
    case = read_case(SAMPLE)
    ours = figures(case.name, margin(case.portfolio, case.params), case.params)
    assert (len(ours["reg_losses"]), len(ours["tail_losses"]), len(ours["skew_losses"])) == (
        23,
        5,
        2,
    )
    assert [row[0] for row in ours["skew_losses"]] == ["LINEAR", "ABS"]


@needs_cases
def test_a_missing_field_is_named(tmp_path: Path) -> None:
    data = json.loads(SAMPLE.read_text())
    del data["Scenario"]["Options"][3]["Strike"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(CaseError) as caught:
        read_case(broken)
    assert caught.value.field == "Scenario.Options[3].Strike"


# ---- the preset ----


def test_presets_name_their_model() -> None:
    assert RiskParams().model is MarginModel.SPMA
    assert RiskParams.preset("span16").model is MarginModel.SPMA
    derive = RiskParams.preset("derive-pmrm2")
    assert derive.model is MarginModel.DERIVE_PMRM2 and derive.derive is not None
    assert RiskParams.from_json(derive.to_json()) == derive
    with pytest.raises(ValidationError, match="needs its parameters"):
        RiskParams(model=MarginModel.DERIVE_PMRM2)
    body = derive.model_dump(mode="json")
    body["derive"]["margin"]["im_factr"] = 1.5  # a typo is refused, not ignored
    with pytest.raises(ValidationError, match="im_factr"):
        RiskParams.model_validate(body)


@needs_cases
def test_the_preset_is_derives_baseline_set() -> None:
    """The preset holds the parameters of Derive's baseline cases: with it, such a case gives
    Derive's Result."""
    path = CASE_DIR / "test_62_general_random_2.json"
    case = read_case(path)
    preset = RiskParams.preset("derive-pmrm2").derive
    stream_only = {"collateral", "collateral_default"}  # a case states its own collaterals
    assert preset.model_dump(exclude=stream_only) == case.params.model_dump(exclude=stream_only)
    ours = figures(case.name, margin(case.portfolio, preset), preset)
    assert case.result is not None and differences(ours, case.result) == []


# ---- the command line ----


def spma(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@needs_cases
def test_cli_check_passes_on_derives_cases() -> None:
    out = spma("reproduce", "derive", "--check", *map(str, CASES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        out.stdout.splitlines()[-1] == f"{len(CASES)} of {len(CASES)} cases match Derive's Result"
    )
    plain = spma("reproduce", "derive", str(SAMPLE))
    line = json.loads(plain.stdout)
    assert line["case"] == SAMPLE.stem
    assert line["im"] == pytest.approx(json.loads(SAMPLE.read_text())["Result"]["IM"], rel=1e-8)


@needs_cases
def test_cli_check_fails_on_a_tampered_result(tmp_path: Path) -> None:
    data = json.loads(SAMPLE.read_text())
    data["Result"]["MM"] *= 1.0001
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    out = spma("reproduce", "derive", "--check", str(tampered))
    assert out.returncode == 1
    assert [line for line in out.stdout.splitlines() if "Result.MM:" in line]


@needs_cases
def test_cli_names_the_file_and_the_missing_field(tmp_path: Path) -> None:
    data = json.loads(SAMPLE.read_text())
    del data["Parameters"]["Margin"]["IM_LOSS_FACTOR"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    out = spma("reproduce", "derive", "--check", str(broken))
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(broken) in lines[0] and "Parameters.Margin.IM_LOSS_FACTOR" in lines[0]
    assert "Traceback" not in out.stderr
    mixed = spma("reproduce", "derive", "--check", str(SAMPLE), str(broken))
    assert mixed.returncode == 2, "a refused file fails the run"
    assert f"{SAMPLE.stem}: OK" in mixed.stdout, "the good case is computed all the same"
    assert "1 of 1 cases match" in mixed.stdout
    assert "1 of 2 case files refused" in mixed.stderr and str(broken) in mixed.stderr
