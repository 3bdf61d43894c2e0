"""Derive PMRM_2's risk parameters as immutable, validated data (IPMRMLib_2's parameter structs).

Field names are ours; the aliases are the names Derive's published cases use, so a case's
``Parameters`` block validates as it stands. Rates and factors are plain decimals (0.05 = 5%).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

DAY_SECONDS = 86400.0


class _Block(BaseModel):
    """Base of a parameter block: immutable, finite, filled by field name or by Derive's name;
    an unknown key is refused (a case file's extra keys are dropped by its reader)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True
    )


class VolShock(StrEnum):
    """A scenario's vol move: the three grid states and the two skew shocks."""

    UP = "Up"
    NONE = "None"
    DOWN = "Down"
    LINEAR = "LINEAR"
    ABS = "ABS"


class Scenario(_Block):
    """One scenario: spot multiplied by ``spot_shock``, a vol move, and its P&L's dampening."""

    spot_shock: float = Field(alias="SpotShock", ge=0)
    vol_shock: VolShock = Field(alias="VolShockDirection")
    dampening: float = Field(alias="DampeningFactor", ge=0)

    @property
    def is_skew(self) -> bool:
        """True for the two skew scenarios (LINEAR, ABS)."""
        return self.vol_shock in (VolShock.LINEAR, VolShock.ABS)


class SkewShockParams(_Block):
    """Skew shocks: the wings' vol multiplier, capped at c_base sqrt(T) + base_cap from k*."""

    linear_base_cap: float = Field(alias="LINEAR_SCALE_CAP", ge=0)
    abs_base_cap: float = Field(alias="ABS_SCALE_CAP", ge=0)
    linear_c_base: float = Field(alias="LINEAR_CBASE")
    abs_c_base: float = Field(alias="ABS_CBASE")
    min_k_star: float = Field(alias="MIN_K_STAR", ge=0)
    width_scale: float = Field(alias="MIN_WIDTH_SCALE", ge=0)
    vol_param_static: float = Field(alias="VOL_PARAM_STATIC", ge=0)
    vol_param_scale: float = Field(alias="VOL_PARAM_SCALE")


class VolShockParams(_Block):
    """Vol shocks scaled by time to expiry: 1 +/- range (30d / max(T, floor))^power."""

    vol_range_up: float = Field(alias="VOLRANGEUP", ge=0)
    vol_range_down: float = Field(alias="VOLRANGEDOWN", ge=0)
    short_term_power: float = Field(alias="SHORTTERMPOWER")
    long_term_power: float = Field(alias="LONGTERMPOWER")
    dte_floor_days: float = Field(alias="DTE_FLOOR", ge=0)
    min_vol_up_shock: float = Field(alias="MIN_VOL_EVAL_SHOCKED", ge=0)

    @property
    def dte_floor_s(self) -> float:
        """The floor on time to expiry, in seconds."""
        return self.dte_floor_days * DAY_SECONDS


class MarginParams(_Block):
    """Loss factors for IM and MM and the static discounts applied to shocked expiry values."""

    mm_factor: float = Field(alias="MM_LOSS_FACTOR", gt=0)
    im_factor: float = Field(alias="IM_LOSS_FACTOR", gt=0)
    short_rate_mult_scale: float = Field(alias="SHORT_RATE_MULTSCALE", ge=0)
    long_rate_mult_scale: float = Field(alias="LONG_RATE_MULTSCALE", ge=0)
    short_rate_add_scale: float = Field(alias="SHORT_RATE_ADDSCALE", ge=0)
    long_rate_add_scale: float = Field(alias="LONG_RATE_ADDSCALE", ge=0)
    long_base_static_discount: float = Field(alias="BASE_STATIC_DISCOUNT", ge=0)
    short_base_static_discount: float = Field(alias="BASE_STATIC_DISCOUNT_NEG", ge=0)


class BasisContingencyParams(_Block):
    """The forward (basis) contingency: the worse of two spot moves, scaled by add + mult T."""

    scenario_spot_up: float = Field(alias="SCENARIO_SPOT_UP", gt=1)
    scenario_spot_down: float = Field(alias="SCENARIO_SPOT_DOWN", lt=1)
    add_factor: float = Field(alias="BASIS_CONT_ADD_FACTOR", ge=0)
    mult_factor: float = Field(alias="BASIS_CONT_MULT_FACTOR", ge=0)


class OtherContingencyParams(_Block):
    """Stable depeg, oracle confidence, perp and short-option contingencies."""

    peg_loss_threshold: float = Field(alias="PEG_LOSS_THRESHOLD", ge=0)
    peg_loss_factor: float = Field(alias="PEG_LOSS_FACTOR", ge=0)
    conf_threshold: float = Field(alias="CONF_THRESHOLD", ge=0, le=1)
    conf_margin: float = Field(alias="CONF_MARGIN", ge=0)
    mm_perp_percent: float = Field(alias="MM_PERP_PERCENT", ge=0)
    im_perp_percent: float = Field(alias="IM_PERP_PERCENT", ge=0)
    mm_option_percent: float = Field(alias="MM_OPTION_PERCENT", ge=0)
    im_option_percent: float = Field(alias="IM_OPTION_PERCENT", ge=0)


class CollateralSpec(_Block):
    """How PMRM_2 takes one collateral asset on the stream: its IM and MM haircuts, and whether it
    cancels the risk of its own underlying's positions (moves with spot in the scenarios)."""

    im_haircut: float = Field(ge=0, le=1)
    mm_haircut: float = Field(ge=0, le=1)
    risk_cancelling: bool = False


class Pmrm2Params(_Block):
    """A complete PMRM_2 parameter set: the scenarios and every parameter block.

    ``regular_spot_range``: scenarios whose spot move is within it are the regular grid, those
    beyond it the tail scenarios (Derive's grid: +/-18% regular, tails from -66% to +300%). It
    only sorts losses for reporting; the margin takes the worst of all scenarios alike.
    ``collateral`` (by asset) and ``collateral_default`` serve the stream's accounts only (a
    case states its collaterals' haircuts itself).
    """

    scenarios: list[Scenario] = Field(alias="Scenarios", min_length=1)
    skew_shock: SkewShockParams = Field(alias="SkewShock")
    vol_shock: VolShockParams = Field(alias="VolShock")
    margin: MarginParams = Field(alias="Margin")
    basis_contingency: BasisContingencyParams = Field(alias="BasisContingency")
    other_contingency: OtherContingencyParams = Field(alias="OtherContingency")
    regular_spot_range: float = Field(0.18, ge=0)
    collateral: dict[str, CollateralSpec] = Field(default_factory=dict)
    collateral_default: CollateralSpec = CollateralSpec(im_haircut=0.1, mm_haircut=0.35)

    def collateral_spec(self, asset: str) -> CollateralSpec:
        """The spec of a collateral asset (the default for one not listed)."""
        return self.collateral.get(asset, self.collateral_default)

    @field_validator("scenarios")
    @classmethod
    def _skews_valid(cls, scenarios: list[Scenario]) -> list[Scenario]:
        """As PMRM_2.setScenarios: at most one skew shock of each kind, at an unmoved spot."""
        for kind in (VolShock.LINEAR, VolShock.ABS):
            skews = [s for s in scenarios if s.vol_shock is kind]
            if len(skews) > 1:
                raise ValueError(f"more than one {kind.value} scenario")
            if skews and skews[0].spot_shock != 1.0:
                raise ValueError(
                    f"the {kind.value} scenario must have SpotShock 1 (PMRM_2 refuses a skew"
                    " shock with a spot move)"
                )
        return scenarios
