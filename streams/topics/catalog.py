"""The topic catalogue (streams.md): every topic's name, record, reader, partitioning and policy.

One table serves topic creation (streams/topics/admin.py), the codec (a topic's record types)
and the agents (which topics each reads). Names are logical: the configured prefix is added by
``Settings.topic``. Account-keyed topics share the configured partition count so that they are
co-partitioned; single-owner topics (insurance claims and fund events, risk parameters) have one
partition so that one worker sees them in order. A topic carries one record type, except the
fund's claims topic, which also carries ADL candidates and liquidation fees: records are told
apart by the writer schema's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streams import records as r


class Topic(StrEnum):
    """A logical topic name (equal to its string, so it keys the settings and the codec)."""

    FILLS = "fills"
    COLLATERAL = "collateral"
    ORACLE_PRICES = "oracle-prices"
    BOOK_DEPTH = "book-depth"
    VOL_SURFACES = "vol-surfaces"
    INSTRUMENTS = "instruments"
    RISK_PARAMS = "risk-params"
    MARGIN_STATUS = "margin-status"
    MARGIN_CALLS = "margin-calls"
    LIQUIDATIONS = "liquidations"
    INSURANCE_FUND = "insurance-fund"
    ADL = "adl"
    SOLVENCY_PROOFS = "solvency-proofs"
    DLQ = "dlq"
    MARKET_BROADCAST = "market-broadcast"
    INSURANCE_CLAIMS = "insurance-claims"


class Cleanup(StrEnum):
    """Kafka cleanup policy."""

    DELETE = "delete"
    COMPACT = "compact"


class Reader(StrEnum):
    """The worker's agent that reads a topic (none: an output, read by the exchange)."""

    MARKET = "market"
    ACCOUNTS = "accounts"
    FUND = "fund"
    NONE = "none"


@dataclass(frozen=True)
class RecordType:
    """A record: the schema files' stem (``fill`` for ``fill.v2.avsc``) and its model."""

    record: str
    model: type[r.Record]


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, its record (schema stem and model) and any other it carries, who
    reads it, whether it follows the account partitioning, its cleanup policy."""

    name: Topic
    doc: str
    record: str
    model: type[r.Record]
    reader: Reader = Reader.NONE
    cleanup: Cleanup = Cleanup.DELETE
    single_partition: bool = False
    internal: bool = False
    keyed_by_account: bool = False  # keyed by the master account by the exchange's producers
    others: tuple[RecordType, ...] = ()

    def types(self) -> tuple[RecordType, ...]:
        """Every record type of the topic, the main one first."""
        return (RecordType(self.record, self.model), *self.others)

    def partitions(self, account_partitions: int) -> int:
        """Partition count when account topics have the given count."""
        return 1 if self.single_partition else account_partitions


TOPICS: tuple[TopicSpec, ...] = (
    # Inputs.
    TopicSpec(
        Topic.FILLS,
        "fills from the matching engine, keyed by master account",
        "fill",
        r.Fill,
        Reader.ACCOUNTS,
        keyed_by_account=True,
    ),
    TopicSpec(
        Topic.COLLATERAL,
        "collateral transfers, keyed by master account",
        "collateral_transfer",
        r.CollateralTransfer,
        Reader.ACCOUNTS,
        keyed_by_account=True,
    ),
    TopicSpec(
        Topic.ORACLE_PRICES,
        "oracle source prices, keyed by underlying",
        "oracle_price",
        r.OraclePrice,
        Reader.MARKET,
    ),
    TopicSpec(
        Topic.BOOK_DEPTH,
        "order-book depth curves, keyed by underlying",
        "book_depth",
        r.BookDepth,
        Reader.MARKET,
        Cleanup.COMPACT,
    ),
    TopicSpec(
        Topic.VOL_SURFACES,
        "implied volatility surfaces, keyed by underlying",
        "vol_surface",
        r.VolSurfaceRecord,
        Reader.MARKET,
        Cleanup.COMPACT,
    ),
    TopicSpec(
        Topic.INSTRUMENTS,
        "instrument reference data, keyed by instrument",
        "instrument",
        r.InstrumentRecord,
        Reader.MARKET,
        Cleanup.COMPACT,
    ),
    TopicSpec(
        Topic.RISK_PARAMS,
        "versioned risk-parameter sets, keyed by set name",
        "risk_params",
        r.RiskParamsRecord,
        Reader.MARKET,
        Cleanup.COMPACT,
        single_partition=True,
    ),
    # Outputs.
    TopicSpec(
        Topic.MARGIN_STATUS,
        "latest margin status per account",
        "margin_status",
        r.MarginStatus,
        cleanup=Cleanup.COMPACT,
    ),
    TopicSpec(Topic.MARGIN_CALLS, "margin calls, keyed by account", "margin_call", r.MarginCall),
    TopicSpec(
        Topic.LIQUIDATIONS,
        "partial-liquidation orders, keyed by account",
        "liquidation_order",
        r.LiquidationOrder,
    ),
    TopicSpec(
        Topic.INSURANCE_FUND,
        "insurance-fund events, keyed by currency",
        "insurance_fund_event",
        r.InsuranceFundEvent,
        single_partition=True,
    ),
    TopicSpec(Topic.ADL, "auto-deleveraging orders, keyed by account", "adl_order", r.AdlOrder),
    TopicSpec(
        Topic.SOLVENCY_PROOFS,
        "Merkle-sum roots of liabilities, keyed by epoch",
        "solvency_proof",
        r.SolvencyProof,
    ),
    TopicSpec(
        Topic.DLQ,
        "rejected input records with the reason, keyed by the original key",
        "dlq_record",
        r.DlqRecord,
    ),
    # Internal.
    TopicSpec(
        Topic.MARKET_BROADCAST,
        "accepted market updates, copied to every account partition",
        "market_update",
        r.MarketUpdate,
        Reader.ACCOUNTS,
        internal=True,
    ),
    TopicSpec(
        Topic.INSURANCE_CLAIMS,
        "bankruptcy claims and ADL candidates for the fund's single owner",
        "insurance_claim",
        r.InsuranceClaim,
        Reader.FUND,
        single_partition=True,
        internal=True,
        others=(
            RecordType("adl_candidate", r.AdlCandidate),
            RecordType("liquidation_fee", r.LiquidationFee),
        ),
    ),
)

CATALOG: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}
"""Every topic's spec by logical name."""


def topic_spec(name: str) -> TopicSpec:
    """The spec of a logical topic name (KeyError naming it when unknown)."""
    spec = CATALOG.get(name)
    if spec is None:
        raise KeyError(f"unknown topic {name!r}")
    return spec


def read_by(reader: Reader) -> tuple[Topic, ...]:
    """The topics an agent reads, in catalogue order."""
    return tuple(spec.name for spec in TOPICS if spec.reader is reader)


MARKET_INPUTS = read_by(Reader.MARKET)
ACCOUNT_INPUTS = read_by(Reader.ACCOUNTS)
FUND_INPUTS = read_by(Reader.FUND)
ACCOUNT_KEYED = frozenset(spec.name for spec in TOPICS if spec.keyed_by_account)
