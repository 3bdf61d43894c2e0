"""Pydantic models of every record on SPMA's topics (schemas/*.avsc), validating values.

Decoded Avro becomes one of these; a value the model rejects (a non-positive price or quantity,
NaN, an unknown enum symbol, a ragged grid) is an invalid record for the dlq. Enum symbols are
the schemas' symbols; instrument kinds and account states are the engine's own enums.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from itertools import pairwise
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from engine.instruments import InstrumentKind, OptionType
from engine.states import AccountState

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class Record(BaseModel):
    """Base of every record: immutable, finite numbers only, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class Side(StrEnum):
    """Direction of a trade or order."""

    BUY = "BUY"
    SELL = "SELL"


class Liquidity(StrEnum):
    """How a fill came about: LIQUIDATION and ADL fills answer the engine's own orders."""

    MAKER = "MAKER"
    TAKER = "TAKER"
    LIQUIDATION = "LIQUIDATION"
    ADL = "ADL"


class TransferKind(StrEnum):
    """Why collateral moved."""

    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    INSURANCE_PAYOUT = "INSURANCE_PAYOUT"
    FUNDING = "FUNDING"
    SETTLEMENT = "SETTLEMENT"


class FundEventKind(StrEnum):
    """What changed the insurance fund."""

    FEE = "FEE"
    PAYOUT = "PAYOUT"
    SHORTFALL = "SHORTFALL"


class DlqReason(StrEnum):
    """Why a record was rejected (codec failures and validation failures)."""

    EMPTY = "EMPTY"
    BAD_MAGIC = "BAD_MAGIC"
    TRUNCATED = "TRUNCATED"
    UNKNOWN_SCHEMA_ID = "UNKNOWN_SCHEMA_ID"
    MALFORMED_BODY = "MALFORMED_BODY"
    INVALID_VALUE = "INVALID_VALUE"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    UNKNOWN_UNDERLYING = "UNKNOWN_UNDERLYING"
    UNKNOWN_ASSET = "UNKNOWN_ASSET"
    FUTURE_TIMESTAMP = "FUTURE_TIMESTAMP"
    DUPLICATE = "DUPLICATE"
    BAD_PARAMS = "BAD_PARAMS"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    UNKNOWN_TOPIC = "UNKNOWN_TOPIC"


class MarketUpdateKind(StrEnum):
    """What a market broadcast carries."""

    MARK = "MARK"
    DEPTH = "DEPTH"
    VOL = "VOL"
    INSTRUMENT = "INSTRUMENT"
    PARAMS = "PARAMS"


def utc_now() -> datetime:
    """Now, timezone-aware (UTC), at millisecond precision like the schemas."""
    now = datetime.now(tz=UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# ----- inputs -------------------------------------------------------------------------------


class Fill(Record):
    """A trade fill (fill.v2; v1 lacks order_id)."""

    fill_id: str = Field(min_length=1)
    account: str = Field(min_length=1)
    sub_account: str | None = None
    instrument: str = Field(min_length=1)
    side: Side
    qty: Positive
    price: Positive
    fee: float = 0.0
    liquidity: Liquidity
    order_id: str | None = None
    ts: AwareDatetime

    @property
    def signed_qty(self) -> float:
        """Quantity signed by side (+ buy, - sell)."""
        return self.qty if self.side is Side.BUY else -self.qty


class CollateralTransfer(Record):
    """A collateral movement (signed amount of an asset)."""

    transfer_id: str = Field(min_length=1)
    account: str = Field(min_length=1)
    sub_account: str | None = None
    asset: str = Field(min_length=1)
    amount: float
    kind: TransferKind
    chain: str | None = None
    confirmations: int = Field(0, ge=0)
    ts: AwareDatetime

    @model_validator(mode="after")
    def _non_zero(self) -> CollateralTransfer:
        if self.amount == 0.0:
            raise ValueError("amount: must be non-zero")
        return self


class OraclePrice(Record):
    """One source's price of an underlying."""

    source: str = Field(min_length=1)
    underlying: str = Field(min_length=1)
    price: Positive
    weight: Positive = 1.0
    ts: AwareDatetime


def _increasing(values: list[float], name: str) -> None:
    """Strictly increasing, or a ValueError naming the field."""
    if any(b <= a for a, b in pairwise(values)):
        raise ValueError(f"{name}: must be strictly increasing")


class BookDepth(Record):
    """Cumulative notional within each bps level, per side."""

    underlying: str = Field(min_length=1)
    mid: Positive
    bps: list[Positive] = Field(min_length=1)
    bid: list[NonNegative]
    ask: list[NonNegative]
    ts: AwareDatetime

    @model_validator(mode="after")
    def _shape(self) -> BookDepth:
        _increasing(self.bps, "bps")
        for name in ("bid", "ask"):
            side = getattr(self, name)
            if len(side) != len(self.bps):
                raise ValueError(f"{name}: want one cumulative notional per bps level")
            if any(b < a for a, b in pairwise(side)):
                raise ValueError(f"{name}: must be non-decreasing")
        return self


class VolSurfaceRecord(Record):
    """Implied vols: one row per expiry (years), one column per log-moneyness."""

    underlying: str = Field(min_length=1)
    expiries: list[Positive] = Field(min_length=1)
    log_moneyness: list[float] = Field(min_length=1)
    vols: list[list[Positive]]
    ts: AwareDatetime

    @model_validator(mode="after")
    def _shape(self) -> VolSurfaceRecord:
        _increasing(self.expiries, "expiries")
        _increasing(self.log_moneyness, "log_moneyness")
        if len(self.vols) != len(self.expiries) or any(
            len(row) != len(self.log_moneyness) for row in self.vols
        ):
            raise ValueError("vols: want one row per expiry and one column per log-moneyness")
        return self


class InstrumentRecord(Record):
    """Reference data of an instrument."""

    name: str = Field(min_length=1)
    kind: InstrumentKind
    underlying: str = Field(min_length=1)
    expiry: AwareDatetime | None = None
    strike: Positive | None = None
    option_type: OptionType | None = None
    contract_size: Positive = 1.0
    inverse: bool = False
    settlement: str = "USD"
    ts: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> InstrumentRecord:
        if self.kind is InstrumentKind.OPTION and (
            self.strike is None or self.option_type is None or self.expiry is None
        ):
            raise ValueError("an option needs strike, option_type and expiry")
        if self.kind is InstrumentKind.FUTURE and self.expiry is None:
            raise ValueError("a future needs an expiry")
        return self


class RiskParamsRecord(Record):
    """A versioned risk-parameter set, as JSON text."""

    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    params_json: str
    ts: AwareDatetime


# ----- outputs ------------------------------------------------------------------------------


class UnderlyingComponent(Record):
    """Requirement components of one underlying."""

    underlying: str
    worst_loss: float
    directional: float
    two_sided: float
    contingencies: float
    short_option: float
    delta: float
    basis: float
    liquidity_addon: float
    delta_notional: float


class MarginStatus(Record):
    """An account's margin after a change."""

    status_id: str
    account: str
    sub_account: str | None = None
    state: AccountState
    equity: float
    equity_mm: float
    equity_im: float
    im: NonNegative
    mm: NonNegative
    ratio_mm: float | None = None
    components: list[UnderlyingComponent]
    directional_total: float
    scenario_requirement: float
    es99: float
    var99: float
    liquidity_addon: float
    haircuts: dict[str, float]
    sub_accounts: dict[str, float] = Field(default_factory=dict)
    params_version: str
    stale_underlyings: list[str] = Field(default_factory=list)
    reason: str
    input_topic: str
    input_partition: int
    input_offset: int
    ts: AwareDatetime


class MarginCall(Record):
    """A margin call: bring E_im back to IM by the deadline."""

    call_id: str
    account: str
    amount: Positive
    equity_im: float
    im: float
    deadline: AwareDatetime
    sequence: int = Field(ge=1)
    ts: AwareDatetime


class LiquidationOrder(Record):
    """A partial-liquidation order."""

    order_id: str
    account: str
    instrument: str
    side: Side
    qty: Positive
    limit_price: Positive
    reason: str
    sequence: int = Field(ge=0)
    ts: AwareDatetime


class InsuranceFundEvent(Record):
    """A change of the insurance fund, with the balance after it."""

    event_id: str
    currency: str
    kind: FundEventKind
    amount: NonNegative
    balance_after: float
    account: str | None = None
    ts: AwareDatetime


class AdlOrder(Record):
    """An auto-deleveraging order."""

    adl_id: str
    account: str
    instrument: str
    side: Side
    qty: Positive
    price: Positive
    counterparty_account: str | None = None
    ts: AwareDatetime


class SolvencyProof(Record):
    """A published Merkle-sum root."""

    epoch: int = Field(ge=0)
    root_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    total_liabilities_cents: int = Field(ge=0)
    account_count: int = Field(ge=0)
    partition: int | None = None
    ts: AwareDatetime


class DlqRecord(Record):
    """A rejected record, its origin and the reason."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    reason: DlqReason
    detail: str
    ts: AwareDatetime


# ----- internal -----------------------------------------------------------------------------


class MarketUpdate(Record):
    """An accepted market update broadcast to every account partition."""

    update_id: str
    kind: MarketUpdateKind
    underlying: str | None = None
    mark: Positive | None = None
    stale: bool = False
    ewma_vol: Positive | None = None
    psr: Positive | None = None
    depth: BookDepth | None = None
    vol: VolSurfaceRecord | None = None
    instrument: InstrumentRecord | None = None
    params: RiskParamsRecord | None = None
    seq: int = Field(ge=0)
    ts: AwareDatetime


class InsuranceClaim(Record):
    """A bankrupt account's claim on the fund."""

    claim_id: str
    account: str
    deficit: Positive
    ts: AwareDatetime


class AdlCandidate(Record):
    """A position ADL may reduce, with its rank score."""

    account: str
    instrument: str
    qty: float
    rank_score: float
    ts: AwareDatetime

    @model_validator(mode="after")
    def _finite(self) -> AdlCandidate:
        if not math.isfinite(self.rank_score):
            raise ValueError("rank_score: must be finite")
        return self
