"""The risk-parameter set: every number of margin-model.md as versioned, validated data.

Defaults are the spec's (version 1). A set loads from JSON or TOML, from a preset shipped with the
engine (``engine/presets``), or from the risk-params topic (its JSON payload), and is immutable.
"""

from __future__ import annotations

import json
import math
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.derive.params import Pmrm2Params

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


class _Frozen(BaseModel):
    """Base for parameter blocks: immutable, unknown keys rejected, numbers must be finite."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class VolState(StrEnum):
    """Volatility state of a scenario: shifted up, unchanged or down (section 4)."""

    UP = "up"
    NONE = "none"
    DOWN = "down"


class MarginModel(StrEnum):
    """Which margin model a parameter set belongs to: ours (margin-model.md) or Derive's PMRM_2."""

    SPMA = "spma"
    DERIVE_PMRM2 = "derive-pmrm2"


class ScenarioRole(StrEnum):
    """What a scenario is for: the core scan, a dampened tail move, or an ES-grid point."""

    CORE = "core"
    TAIL = "tail"
    ES = "es"


class AssetClass(StrEnum):
    """Collateral asset classes with their own base haircut (section 6)."""

    FIAT = "fiat"
    STABLECOIN = "stablecoin"
    MAJOR = "major"
    MID_CAP = "mid_cap"
    LONG_TAIL = "long_tail"


class ScenarioSpec(_Frozen):
    """One scenario: a price move (a multiple of PSR, or absolute), a vol state and a weight.

    ``weight="dampened"`` means w = min(1, PSR / |m|), the tail dampening of section 4.
    """

    move: float
    unit: Literal["psr", "abs"] = "abs"
    vol: VolState = VolState.NONE
    weight: float | Literal["dampened"] = 1.0
    role: ScenarioRole = ScenarioRole.CORE

    @field_validator("weight")
    @classmethod
    def _weight_in_unit_interval(cls, w: float | str) -> float | str:
        if isinstance(w, float) and not 0.0 <= w <= 1.0:
            raise ValueError("a scenario weight must be in [0, 1]")
        return w


def _default_scenarios() -> list[ScenarioSpec]:
    """The default set: 27 core (9 moves x 3 vol states), 8 dampened tails, 21 ES-grid points."""
    core = [
        ScenarioSpec(move=step / 4, unit="psr", vol=vol, weight=1.0, role=ScenarioRole.CORE)
        for step in range(-4, 5)
        for vol in (VolState.UP, VolState.NONE, VolState.DOWN)
    ]
    tail = [
        ScenarioSpec(move=m, unit="abs", vol=VolState.UP, weight="dampened", role=ScenarioRole.TAIL)
        for m in (-0.66, -0.33, 0.50, 1.00, 2.00, 3.00, 4.00, 5.00)
    ]
    es = [
        ScenarioSpec(move=round(k * 0.05, 10), unit="abs", weight=0.0, role=ScenarioRole.ES)
        for k in range(-10, 11)
    ]
    return core + tail + es


class ScenarioSetParams(_Frozen):
    """A scenario set as data; the ES grid is the sorted moves of its ``es`` scenarios."""

    name: str = "spma-default"
    scenarios: list[ScenarioSpec] = Field(default_factory=_default_scenarios)

    @model_validator(mode="after")
    def _check(self) -> ScenarioSetParams:
        if not self.scenarios:
            raise ValueError("a scenario set needs at least one scenario")
        es = [s.move for s in self.scenarios if s.role is ScenarioRole.ES]
        if es and (len(set(es)) != len(es) or es != sorted(es)):
            raise ValueError("ES-grid moves must be distinct and increasing")
        if any(s.role is ScenarioRole.ES and s.weight != 0.0 for s in self.scenarios):
            raise ValueError("ES-grid scenarios must have weight 0")
        return self


class VolShockParams(_Frozen):
    """Expiry-scaled vol shocks: sigma_up = sigma (1 + up (ref/DTE)^p), sigma_down likewise."""

    up: float = Field(0.50, ge=0)
    down: float = Field(0.25, ge=0, lt=1)
    ref_days: float = Field(30.0, gt=0)
    exponent_short: float = Field(0.30, ge=0)
    exponent_long: float = Field(0.13, ge=0)
    up_floor: float = Field(0.50, ge=0)
    down_floor: float = Field(0.05, ge=0)
    min_dte_days: float = Field(1.0, gt=0)


class ContingencyParams(_Frozen):
    """Contingency rates: per net short option (x S x size), of delta and of hedged basis."""

    short_option: float = Field(0.003, ge=0)
    delta: float = Field(0.01, ge=0)
    basis: float = Field(0.01, ge=0)


class CorrelationParams(_Frozen):
    """Stressed correlations between underlyings and the cap on the correlation credit."""

    pairs: dict[str, float] = Field(default_factory=lambda: {"BTC/ETH": 0.80})
    major_other: dict[str, float] = Field(default_factory=lambda: {"BTC": 0.70, "ETH": 0.70})
    other_other: float = Field(0.60, ge=-1, le=1)
    max_credit: float = Field(0.50, ge=0, le=1)

    @field_validator("pairs")
    @classmethod
    def _pairs_valid(cls, pairs: dict[str, float]) -> dict[str, float]:
        for key, value in pairs.items():
            if len(key.split("/")) != 2 or not -1.0 <= value <= 1.0:
                raise ValueError(f"pair {key!r}: want 'A/B' with a correlation in [-1, 1]")
        return pairs

    def rho(self, a: str, b: str) -> float:
        """Stressed correlation between underlyings a and b (1 on the diagonal)."""
        if a == b:
            return 1.0
        for key in (f"{a}/{b}", f"{b}/{a}"):
            if key in self.pairs:
                return self.pairs[key]
        for major, other in ((a, b), (b, a)):
            if major in self.major_other and other not in self.major_other:
                return self.major_other[major]
        return self.other_other


class ShortfallParams(_Frozen):
    """Expected shortfall: joint Student-t draws, horizon, quantile and EWMA vol floors."""

    draws: int = Field(2000, ge=100)
    df: float = Field(4.0, gt=2)
    seed: int = 20260101
    horizon_days: float = Field(2.0, gt=0)
    quantile: float = Field(0.99, gt=0.5, lt=1)
    ewma_lambda: float = Field(0.94, gt=0, lt=1)
    vol_floor: dict[str, float] = Field(default_factory=lambda: {"BTC": 0.60, "ETH": 0.60})
    vol_floor_default: float = Field(0.90, gt=0)

    def floor_for(self, underlying: str) -> float:
        """Annual EWMA vol floor of an underlying."""
        return self.vol_floor.get(underlying, self.vol_floor_default)


class HaircutParams(_Frozen):
    """Collateral haircuts: base by class, depeg threshold, IM multiplier, beyond-book charge."""

    base: dict[AssetClass, float] = Field(
        default_factory=lambda: {
            AssetClass.FIAT: 0.0,
            AssetClass.STABLECOIN: 0.02,
            AssetClass.MAJOR: 0.10,
            AssetClass.MID_CAP: 0.30,
            AssetClass.LONG_TAIL: 0.75,
        }
    )
    depeg_threshold: float = Field(0.99, gt=0, le=1)
    im_multiplier: float = Field(1.25, ge=1)
    beyond_last_level_multiplier: float = Field(2.0, ge=1)

    @field_validator("base")
    @classmethod
    def _bases_valid(cls, base: dict[AssetClass, float]) -> dict[AssetClass, float]:
        missing = set(AssetClass) - set(base)
        if missing:
            raise ValueError(f"base haircut missing for {sorted(missing)}")
        if any(not 0.0 <= h <= 1.0 for h in base.values()):
            raise ValueError("base haircuts must be in [0, 1]")
        return base


class MarginParams(_Frozen):
    """How IM and MM are built from the risk requirement and the liquidity add-on."""

    mm_risk_fraction: float = Field(0.80, gt=0, le=1)
    mm_liquidity_fraction: float = Field(0.50, ge=0, le=1)


class OracleParams(_Frozen):
    """Mark-price validation (section 7)."""

    max_age_s: float = Field(5.0, gt=0)
    max_deviation: float = Field(0.02, gt=0)
    min_sources: int = Field(2, ge=1)


class ConflationParams(_Frozen):
    """Market-update conflation: forward when the mark moved enough or enough time passed."""

    min_move_bps: float = Field(5.0, ge=0)
    max_interval_ms: float = Field(250.0, gt=0)


class LiquidationParams(_Frozen):
    """Partial liquidation (section 9)."""

    target_ratio: float = Field(1.10, ge=1)
    slice_depth_fraction: float = Field(0.10, gt=0, le=1)
    slice_depth_bps: float = Field(100.0, gt=0)
    fee: float = Field(0.005, ge=0)


class AdlParams(_Frozen):
    """Auto-deleveraging (section 10): what each account partition publishes to the fund."""

    candidates_per_side: int = Field(20, ge=1)
    candidate_interval_s: float = Field(5.0, gt=0)
    claim_repeat_s: float = Field(60.0, gt=0)
    pending_timeout_s: float = Field(30.0, gt=0)
    takeover_slippage: float = Field(0.5, gt=0, lt=1)


class DynamicMarginParams(_Frozen):
    """EWMA-driven PSR with the anti-procyclicality bound (section 12)."""

    enabled: bool = True
    vol_multiplier: float = Field(2.5, ge=0)
    horizon_days: float = Field(2.0, gt=0)
    max_daily_drop: float = Field(0.10, ge=0, lt=1)


class ProofParams(_Frozen):
    """Proof of liabilities (section 13): partitions publish a root per epoch of event time."""

    enabled: bool = True
    epoch_s: float = Field(3600.0, gt=0)


class StatusParams(_Frozen):
    """When statuses and calls go out (streams.md, margin-model.md section 8)."""

    ratio_change: float = Field(0.01, ge=0)
    margin_call_repeat_s: float = Field(60.0, gt=0)
    future_ts_tolerance_s: float = Field(300.0, gt=0)
    max_market_lag_s: float = Field(60.0, gt=0)
    """An account input stamped this long after the partition's latest market update finds
    the partition's market behind (its broadcast lags): every mark counts as STALE for it, so
    its status says so and no liquidation, claim or call is made on old marks."""


class InputParams(_Frozen):
    """Bounds on what an account input may carry (streams/accounts/validation.py): an input
    beyond one goes to the dlq (OUT_OF_RANGE, STALE_TIMESTAMP, UNKNOWN_ASSET) and changes
    nothing. Notionals are in USD; overrides by underlying take precedence. ``asset_symbol`` is
    the pattern a collateral asset's symbol must match (a full match). ``hold_s``: how long (event
    time) an input that raced ahead of its listing or its asset's price is held for them before
    it goes to the dlq (UNKNOWN_INSTRUMENT, UNKNOWN_ASSET). ``collateral_assets``: coins priced
    as collateral though no instrument lists them (the stablecoins and the settlement currency
    always are); market data of any other underlying nobody lists goes to the dlq
    (UNKNOWN_UNDERLYING)."""

    max_id_length: int = Field(128, ge=8)
    max_notional_usd: float = Field(1e9, gt=0)
    max_notional_by_underlying: dict[str, float] = Field(default_factory=dict)
    max_depth_multiple: float = Field(50.0, gt=0)
    max_price_usd: float = Field(1e9, gt=0)
    max_price_ratio: float = Field(3.0, gt=1)
    max_price_ratio_by_underlying: dict[str, float] = Field(default_factory=dict)
    max_fee_fraction: float = Field(0.05, ge=0)
    fee_floor_usd: float = Field(1.0, ge=0)
    max_age_s: float = Field(86400.0, gt=0)
    hold_s: float = Field(60.0, gt=0)
    asset_symbol: str = r"[A-Z0-9]{2,12}"
    collateral_assets: list[str] = Field(default_factory=list)

    def max_notional(self, underlying: str) -> float:
        """The largest USD notional one input may carry on an underlying."""
        return self.max_notional_by_underlying.get(underlying, self.max_notional_usd)

    def price_ratio(self, underlying: str) -> float:
        """How many times its mark (or its mark divided by) a fill's price may be on an
        underlying: wide enough for a crash and the fund's takeover slippage, not for a price
        off by orders of magnitude."""
        return self.max_price_ratio_by_underlying.get(underlying, self.max_price_ratio)


class RiskParams(_Frozen):
    """A complete, versioned risk-parameter set; every number of the margin model lives here.

    ``model`` names the margin model the set belongs to; a Derive PMRM_2 set carries Derive's
    parameters in ``derive`` (the other blocks still run the stream: inputs, oracle, statuses).
    """

    name: str = "default"
    version: int = Field(1, ge=1)
    model: MarginModel = MarginModel.SPMA
    derive: Pmrm2Params | None = None
    psr: dict[str, float] = Field(default_factory=lambda: {"BTC": 0.16, "ETH": 0.18})
    psr_default: float = Field(0.25, gt=0, lt=1)
    majors: list[str] = Field(default_factory=lambda: ["BTC", "ETH"])
    stablecoins: list[str] = Field(default_factory=lambda: ["USDC", "USDT", "DAI"])
    settlement_currency: str = "USD"
    scenario_set: ScenarioSetParams = Field(default_factory=ScenarioSetParams)
    vol_shock: VolShockParams = Field(default_factory=VolShockParams)
    contingencies: ContingencyParams = Field(default_factory=ContingencyParams)
    correlation: CorrelationParams = Field(default_factory=CorrelationParams)
    shortfall: ShortfallParams = Field(default_factory=ShortfallParams)
    haircuts: HaircutParams = Field(default_factory=HaircutParams)
    margin: MarginParams = Field(default_factory=MarginParams)
    oracle: OracleParams = Field(default_factory=OracleParams)
    conflation: ConflationParams = Field(default_factory=ConflationParams)
    liquidation: LiquidationParams = Field(default_factory=LiquidationParams)
    adl: AdlParams = Field(default_factory=AdlParams)
    dynamic: DynamicMarginParams = Field(default_factory=DynamicMarginParams)
    status: StatusParams = Field(default_factory=StatusParams)
    proofs: ProofParams = Field(default_factory=ProofParams)
    inputs: InputParams = Field(default_factory=InputParams)

    @model_validator(mode="after")
    def _model_has_its_params(self) -> RiskParams:
        if self.model is MarginModel.DERIVE_PMRM2 and self.derive is None:
            raise ValueError("model derive-pmrm2 needs its parameters in 'derive'")
        return self

    @field_validator("psr")
    @classmethod
    def _psr_valid(cls, psr: dict[str, float]) -> dict[str, float]:
        for underlying, value in psr.items():
            if not (math.isfinite(value) and 0.0 < value < 1.0):
                raise ValueError(f"psr[{underlying}] must be in (0, 1), got {value}")
        return psr

    def psr_for(self, underlying: str) -> float:
        """Price scan range of an underlying (before the dynamic-margin scaling)."""
        return self.psr.get(underlying, self.psr_default)

    def is_unlisted_collateral(self, name: str) -> bool:
        """A coin priced as collateral without a listing: the settlement currency, a stablecoin,
        or one of ``inputs.collateral_assets``."""
        return (
            name == self.settlement_currency
            or name in self.stablecoins
            or name in self.inputs.collateral_assets
        )

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> RiskParams:
        """Validate a parameter set given as a mapping (raises pydantic.ValidationError)."""
        return cls.model_validate(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> RiskParams:
        """Validate a parameter set given as JSON text (the risk-params topic's payload)."""
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: str | Path) -> RiskParams:
        """Load a parameter set from a .json or .toml file."""
        path = Path(path)
        if path.suffix.lower() == ".toml":
            return cls.from_mapping(tomllib.loads(path.read_text()))
        return cls.from_json(path.read_bytes())

    @classmethod
    def preset(cls, name: str) -> RiskParams:
        """A parameter set shipped with the engine: 'default', 'span16' or 'derive-pmrm2'."""
        if name == "default":
            return cls()
        path = PRESETS_DIR / f"{name}.json"
        if not path.is_file():
            known = ["default", *sorted(p.stem for p in PRESETS_DIR.glob("*.json"))]
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(known)}")
        return cls.load(path)

    def to_json(self) -> str:
        """The set as JSON text, loadable again with from_json."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)
