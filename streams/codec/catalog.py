"""Which record each topic carries (topic names without the configured prefix)."""

from __future__ import annotations

from dataclasses import dataclass

from streams import records as r


@dataclass(frozen=True)
class TopicRecord:
    """A topic's record: the schema file's record name and the model it decodes to."""

    record: str
    model: type[r.Record]


CATALOG: dict[str, TopicRecord] = {
    "fills": TopicRecord("fill", r.Fill),
    "collateral": TopicRecord("collateral_transfer", r.CollateralTransfer),
    "oracle-prices": TopicRecord("oracle_price", r.OraclePrice),
    "book-depth": TopicRecord("book_depth", r.BookDepth),
    "vol-surfaces": TopicRecord("vol_surface", r.VolSurfaceRecord),
    "instruments": TopicRecord("instrument", r.InstrumentRecord),
    "risk-params": TopicRecord("risk_params", r.RiskParamsRecord),
    "margin-status": TopicRecord("margin_status", r.MarginStatus),
    "margin-calls": TopicRecord("margin_call", r.MarginCall),
    "liquidations": TopicRecord("liquidation_order", r.LiquidationOrder),
    "insurance-fund": TopicRecord("insurance_fund_event", r.InsuranceFundEvent),
    "adl": TopicRecord("adl_order", r.AdlOrder),
    "solvency-proofs": TopicRecord("solvency_proof", r.SolvencyProof),
    "dlq": TopicRecord("dlq_record", r.DlqRecord),
    "market-broadcast": TopicRecord("market_update", r.MarketUpdate),
    "insurance-claims": TopicRecord("insurance_claim", r.InsuranceClaim),
}
