"""Pydantic models of every record on SPMA's topics (schemas/*.avsc), validating values.

Decoded Avro becomes one of these; a value the model rejects (a non-positive price or quantity,
NaN, an unknown enum symbol, a ragged grid) is an invalid record for the dlq. Enum symbols are
the schemas' symbols; instrument kinds, option types, account states and fund event kinds are the
engine's own enums. Importing this module needs no Kafka client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from engine.checks import is_increasing
from engine.instruments import InstrumentKind, OptionType
from engine.insurance import FundEventKind
from engine.states import AccountState

__all__ = [
    "AccountState",
    "AdlCandidate",
    "AdlOrder",
    "BookDepth",
    "ClaimPosition",
    "CollateralTransfer",
    "DlqReason",
    "DlqRecord",
    "Fill",
    "FundEventKind",
    "InstrumentKind",
    "InstrumentRecord",
    "InsuranceClaim",
    "InsuranceFundEvent",
    "LiquidationFee",
    "LiquidationOrder",
    "Liquidity",
    "MarginCall",
    "MarginStatus",
    "MarketUpdate",
    "MarketUpdateKind",
    "OptionType",
    "OraclePrice",
    "Record",
    "RiskParamsRecord",
    "Side",
    "SolvencyProof",
    "Timestamp",
    "TransferKind",
    "UnderlyingComponent",
    "VolSurfaceRecord",
    "utc_now",
]


def to_utc_millis(value: datetime) -> datetime:
    """An aware datetime in UTC at millisecond precision: exactly what timestamp-millis carries."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Count32 = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""A non-negative Avro ``int`` (partitions, sequences, versions)."""
Count64 = Annotated[int, Field(ge=0, le=2**63 - 1)]
"""A non-negative Avro ``long`` (offsets, epochs, cents, counts)."""
Timestamp = Annotated[AwareDatetime, AfterValidator(to_utc_millis)]
"""A timezone-aware instant, normalised to UTC milliseconds so that Avro round trips are exact."""


class Record(BaseModel):
    """Base of every record: immutable, finite numbers only, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    def to_avro(self) -> dict[str, Any]:
        """The record as the mapping fastavro writes (enums are str, datetimes aware UTC)."""
        return self.model_dump()


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


class InstrumentState(StrEnum):
    """Where an instrument is in its life: tradable, past its expiry awaiting the exchange's
    settlement price, or settled (its positions closed at that price)."""

    LISTED = "LISTED"
    EXPIRED = "EXPIRED"
    SETTLED = "SETTLED"


class DlqReason(StrEnum):
    """Why a record was rejected (codec failures first, then the processor's own checks)."""

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
    STALE_PARAMS = "STALE_PARAMS"
    KEY_MISMATCH = "KEY_MISMATCH"
    NULL_KEY = "NULL_KEY"
    EXPIRED_INSTRUMENT = "EXPIRED_INSTRUMENT"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    STALE_TIMESTAMP = "STALE_TIMESTAMP"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class MarketUpdateKind(StrEnum):
    """What a market broadcast carries."""

    MARK = "MARK"
    DEPTH = "DEPTH"
    VOL = "VOL"
    INSTRUMENT = "INSTRUMENT"
    PARAMS = "PARAMS"


def utc_now() -> datetime:
    """Now, timezone-aware (UTC), at millisecond precision like the schemas."""
    return to_utc_millis(datetime.now(tz=UTC))


def _increasing(values: list[float], name: str, *, strict: bool = True) -> None:
    """Strictly increasing (``strict``) or non-decreasing, or a ValueError naming the field."""
    if not is_increasing(values, strict):
        rule = "strictly increasing" if strict else "non-decreasing"
        raise ValueError(f"{name}: must be {rule}")


def _check_non_zero(value: float, name: str) -> None:
    """A ValueError naming the field when the value is zero."""
    if value == 0.0:
        raise ValueError(f"{name}: must be non-zero")


# ----- inputs -------------------------------------------------------------------------------


class Fill(Record):
    """A trade fill (fill.v3; v1 lacks order_id, v2 lacks isolated)."""

    fill_id: str = Field(min_length=1)
    account: str = Field(min_length=1)
    sub_account: str | None = None
    isolated: bool = False
    instrument: str = Field(min_length=1)
    side: Side
    qty: Positive
    price: Positive
    fee: float = 0.0
    liquidity: Liquidity
    order_id: str | None = None
    ts: Timestamp

    @property
    def signed_qty(self) -> float:
        """Quantity signed by side (+ buy, - sell)."""
        return self.qty if self.side is Side.BUY else -self.qty


class CollateralTransfer(Record):
    """A collateral movement: a signed, finite, non-zero amount of an asset."""

    transfer_id: str = Field(min_length=1)
    account: str = Field(min_length=1)
    sub_account: str | None = None
    isolated: bool = False
    asset: str = Field(min_length=1)
    amount: float
    kind: TransferKind
    chain: str | None = None
    confirmations: Count32 = 0
    ts: Timestamp

    @model_validator(mode="after")
    def _non_zero(self) -> CollateralTransfer:
        """A zero transfer is a producer bug, not a no-op."""
        _check_non_zero(self.amount, "amount")
        return self


class OraclePrice(Record):
    """One source's price of an underlying, with the source's weight."""

    source: str = Field(min_length=1)
    underlying: str = Field(min_length=1)
    price: Positive
    weight: Positive = 1.0
    ts: Timestamp


class BookDepth(Record):
    """Cumulative notional (USD) within each bps level, per side; levels increasing."""

    underlying: str = Field(min_length=1)
    mid: Positive
    bps: list[Positive] = Field(min_length=1)
    bid: list[NonNegative]
    ask: list[NonNegative]
    ts: Timestamp

    @model_validator(mode="after")
    def _shape(self) -> BookDepth:
        """One cumulative, non-decreasing notional per level on each side."""
        _increasing(self.bps, "bps")
        for name, side in (("bid", self.bid), ("ask", self.ask)):
            if len(side) != len(self.bps):
                raise ValueError(f"{name}: want one cumulative notional per bps level")
            _increasing(side, name, strict=False)
        return self


class VolSurfaceRecord(Record):
    """Implied vols: one row per expiry (years), one column per log-moneyness."""

    underlying: str = Field(min_length=1)
    expiries: list[Positive] = Field(min_length=1)
    log_moneyness: list[float] = Field(min_length=1)
    vols: list[list[Positive]]
    ts: Timestamp

    @model_validator(mode="after")
    def _shape(self) -> VolSurfaceRecord:
        """Increasing axes and a rectangular grid of positive vols."""
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
    expiry: Timestamp | None = None
    strike: Positive | None = None
    option_type: OptionType | None = None
    contract_size: Positive = 1.0
    inverse: bool = False
    settlement: str = Field("USD", min_length=1)
    state: InstrumentState = InstrumentState.LISTED
    settlement_price: Positive | None = None
    ts: Timestamp

    @model_validator(mode="after")
    def _consistent(self) -> InstrumentRecord:
        """Options need strike, type and expiry; futures need an expiry; a settlement needs an
        expiry and its price (and only a settlement has one)."""
        if self.kind is InstrumentKind.OPTION and (
            self.strike is None or self.option_type is None or self.expiry is None
        ):
            raise ValueError("an option needs strike, option_type and expiry")
        if self.kind is InstrumentKind.FUTURE and self.expiry is None:
            raise ValueError("a future needs an expiry")
        settled = self.state is InstrumentState.SETTLED
        if settled and (self.expiry is None or self.settlement_price is None):
            raise ValueError("a SETTLED instrument needs its expiry and settlement_price")
        if not settled and self.settlement_price is not None:
            raise ValueError("settlement_price belongs to a SETTLED instrument only")
        return self


class RiskParamsRecord(Record):
    """A versioned risk-parameter set, as JSON text (engine.params parses it)."""

    name: str = Field(min_length=1)
    version: Annotated[Count32, Field(ge=1)]
    params_json: str
    ts: Timestamp


# ----- outputs ------------------------------------------------------------------------------


class UnderlyingComponent(Record):
    """Requirement components of one underlying (margin-model.md section 5), USD."""

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
    """An account's margin after a change; ratio_mm None means infinite (MM = 0)."""

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
    psr: dict[str, float] = Field(default_factory=dict)
    stale_underlyings: list[str] = Field(default_factory=list)
    reason: str
    input_topic: str
    input_partition: Count32
    input_offset: Count64
    ts: Timestamp


class MarginCall(Record):
    """A margin call: bring E_im back to IM by the deadline (margin_call.v2 adds ``state``)."""

    call_id: str
    account: str
    amount: Positive
    equity_im: float
    im: float
    deadline: Timestamp
    sequence: Annotated[Count32, Field(ge=1)]
    state: AccountState = AccountState.MARGIN_CALL
    ts: Timestamp


class LiquidationOrder(Record):
    """A partial-liquidation order (liquidation_order.v2 adds the triggering input's position)."""

    order_id: str
    account: str
    instrument: str
    side: Side
    qty: Positive
    limit_price: Positive
    reason: str
    sequence: Count32
    input_topic: str | None = None
    input_partition: Count32 | None = None
    input_offset: Count64 | None = None
    ts: Timestamp


class InsuranceFundEvent(Record):
    """A change of the insurance fund, with the balance after it."""

    event_id: str
    currency: str
    kind: FundEventKind
    amount: NonNegative
    balance_after: float
    account: str | None = None
    ts: Timestamp


class AdlOrder(Record):
    """An auto-deleveraging order at the bankruptcy price."""

    adl_id: str
    account: str
    instrument: str
    side: Side
    qty: Positive
    price: Positive
    counterparty_account: str | None = None
    amount: NonNegative = 0.0
    claim_id: str | None = None
    ts: Timestamp


class SolvencyProof(Record):
    """A published Merkle-sum root; liabilities in integer cents, as the tree sums them."""

    epoch: Count64
    root_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    total_liabilities_cents: Count64
    account_count: Count64
    partition: Count32 | None = None
    ts: Timestamp

    @property
    def total_liabilities(self) -> float:
        """Total liabilities in USD."""
        return self.total_liabilities_cents / 100


class DlqRecord(Record):
    """A rejected record, its origin and the reason."""

    topic: str
    partition: Int32
    offset: Int64
    key: bytes | None = None
    value: bytes | None = None
    reason: DlqReason
    detail: str
    ts: Timestamp


# ----- internal -----------------------------------------------------------------------------

_PAYLOAD_OF = {
    MarketUpdateKind.MARK: "mark",
    MarketUpdateKind.DEPTH: "depth",
    MarketUpdateKind.VOL: "vol",
    MarketUpdateKind.INSTRUMENT: "instrument",
    MarketUpdateKind.PARAMS: "params",
}


class MarketUpdate(Record):
    """An accepted market update broadcast to every account partition.

    One record with optional payload fields rather than an Avro union of records: ``kind`` says
    which payload is set (MARK: mark, stale, ewma_vol, psr; DEPTH: depth; VOL: vol; INSTRUMENT:
    instrument; PARAMS: params), and each payload is the input record as validated.
    """

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
    seq: Count64
    ts: Timestamp

    @model_validator(mode="after")
    def _payload(self) -> MarketUpdate:
        """The payload that ``kind`` names is present."""
        name = _PAYLOAD_OF[self.kind]
        if getattr(self, name) is None:
            raise ValueError(f"{name}: a {self.kind.value} update needs it")
        return self


class ClaimPosition(Record):
    """An open position of a bankrupt account, as ADL would close it."""

    instrument: str = Field(min_length=1)
    qty: float
    mark: Positive
    unit_value: Positive


class InsuranceClaim(Record):
    """A bankrupt account's claim on the fund (deficit = -E, USD) and its open positions."""

    claim_id: str
    account: str
    deficit: Positive
    payouts_received: NonNegative = 0.0  # v3: so that the fund can tell payouts in flight
    positions: list[ClaimPosition] = Field(default_factory=list)
    ts: Timestamp


class LiquidationFee(Record):
    """A liquidation fee owed to the insurance fund (from a LIQUIDATION fill)."""

    fee_id: str = Field(min_length=1)
    account: str = Field(min_length=1)
    amount: Positive
    fill_id: str = Field(min_length=1)
    ts: Timestamp


class AdlCandidate(Record):
    """A position ADL may reduce (signed qty), with its rank score (profit ratio x leverage)."""

    account: str
    instrument: str
    qty: float
    rank_score: float
    partition: int = -1
    ts: Timestamp

    @model_validator(mode="after")
    def _non_zero(self) -> AdlCandidate:
        """A flat position is nothing to deleverage."""
        _check_non_zero(self.qty, "qty")
        return self
