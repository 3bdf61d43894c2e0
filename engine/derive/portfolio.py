"""A PMRM_2 portfolio and its market, as Derive's risk manager arranges them before margining.

Field names are ours; the aliases are the names of a published case's ``Scenario`` block. Times
are seconds to expiry; amounts are signed (short < 0); prices are in the stable's units except
collateral, whose value is divided by the stable's price (as PMRM_2 does).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Input(BaseModel):
    """Base of the portfolio's records: immutable, finite, by field name or Derive's name."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", allow_inf_nan=False, populate_by_name=True
    )


class Collateral(_Input):
    """A collateral holding with its oracle price and confidence and its haircuts."""

    name: str = Field(alias="Name")
    amount: float = Field(alias="Amount", ge=0)
    price: float = Field(alias="Price", ge=0)
    confidence: float = Field(alias="Confidence", ge=0, le=1)
    risk_cancelling: bool = Field(alias="IsRiskCancelling")
    im_haircut: float = Field(alias="IMHaircut", ge=0, le=1)
    mm_haircut: float = Field(alias="MMHaircut", ge=0, le=1)


class OptionHolding(_Input):
    """An option position: expiry (seconds from now), strike, call or put, mark vol, amount."""

    expiry_s: int = Field(alias="Expiry")
    strike: float = Field(alias="Strike", ge=0)
    is_call: bool = Field(alias="IsCall")
    vol: float = Field(alias="MarkVol", ge=0)
    amount: float = Field(alias="Amount")


class OptionFeed(_Input):
    """One expiry's feeds: the forward, the rate and the confidences of forward, rate and vol."""

    expiry_s: int = Field(alias="FeedExpiry")
    forward: float = Field(alias="Forward", ge=0)
    forward_confidence: float = Field(alias="ForwardConfidence", ge=0, le=1)
    rate: float = Field(alias="Rate")
    rate_confidence: float = Field(alias="RateConfidence", ge=0, le=1)
    vol_confidence: float = Field(alias="OptionVolConfidences", ge=0, le=1)


class Portfolio(_Input):
    """Cash, collaterals, a perpetual and options, with the spot, perp and stable feeds."""

    cash: float = Field(alias="Cash")
    collaterals: list[Collateral] = Field(alias="Collaterals")
    spot_price: float = Field(alias="SpotPrice", ge=0)
    spot_confidence: float = Field(alias="SpotConfidence", ge=0, le=1)
    perp_position: float = Field(alias="NumPerps")
    perp_price: float = Field(alias="PerpPrice", ge=0)
    perp_confidence: float = Field(alias="PerpConfidence", ge=0, le=1)
    perp_pnl: float = Field(alias="UnrealisedPerpPNL")
    perp_funding: float = Field(alias="UnrealisedFunding")
    stable_price: float = Field(alias="StablePrice", gt=0)
    options: list[OptionHolding] = Field(alias="Options")
    feeds: list[OptionFeed] = Field(alias="OptionFeeds")
