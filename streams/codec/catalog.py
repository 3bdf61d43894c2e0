"""Which record each topic carries (topic names without the configured prefix).

A topic carries one record type, except the fund's single-owner claims topic, which also carries
ADL candidates (streams/topics/admin.py): records are told apart by the writer schema's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streams import records as r


@dataclass(frozen=True)
class RecordType:
    """A record: the schema files' stem (``fill`` for ``fill.v2.avsc``) and its model."""

    record: str
    model: type[r.Record]


@dataclass(frozen=True)
class TopicRecord:
    """A topic's record (its schema stem and model), and any other record the topic carries."""

    record: str
    model: type[r.Record]
    others: tuple[RecordType, ...] = ()

    def types(self) -> tuple[RecordType, ...]:
        """Every record type of the topic, the main one first."""
        return (RecordType(self.record, self.model), *self.others)


Catalog = Mapping[str, TopicRecord]

CATALOG: dict[str, TopicRecord] = {
    # Inputs.
    "fills": TopicRecord("fill", r.Fill),
    "collateral": TopicRecord("collateral_transfer", r.CollateralTransfer),
    "oracle-prices": TopicRecord("oracle_price", r.OraclePrice),
    "book-depth": TopicRecord("book_depth", r.BookDepth),
    "vol-surfaces": TopicRecord("vol_surface", r.VolSurfaceRecord),
    "instruments": TopicRecord("instrument", r.InstrumentRecord),
    "risk-params": TopicRecord("risk_params", r.RiskParamsRecord),
    # Outputs.
    "margin-status": TopicRecord("margin_status", r.MarginStatus),
    "margin-calls": TopicRecord("margin_call", r.MarginCall),
    "liquidations": TopicRecord("liquidation_order", r.LiquidationOrder),
    "insurance-fund": TopicRecord("insurance_fund_event", r.InsuranceFundEvent),
    "adl": TopicRecord("adl_order", r.AdlOrder),
    "solvency-proofs": TopicRecord("solvency_proof", r.SolvencyProof),
    "dlq": TopicRecord("dlq_record", r.DlqRecord),
    # Internal.
    "market-broadcast": TopicRecord("market_update", r.MarketUpdate),
    "insurance-claims": TopicRecord(
        "insurance_claim",
        r.InsuranceClaim,
        (
            RecordType("adl_candidate", r.AdlCandidate),
            RecordType("liquidation_fee", r.LiquidationFee),
        ),
    ),
}
