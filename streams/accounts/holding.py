"""Inputs that raced ahead of their reference data: a fill on a well-formed name nobody has listed
yet, or a transfer of a coin nobody prices or lists yet. Listings and prices come on other topics
and may reach a partition after the fill that needs them, so such an input is held in its
account's record (durable with it) instead of being applied or refused; a market update that
brings its reference releases it, in order, through the same checks as any input; when the
partition's listings (or marks, for an asset) pass its deadline (``inputs.hold_s`` after it was
held: ``passed``) it goes to the dlq with its reason (UNKNOWN_INSTRUMENT, UNKNOWN_ASSET).
Meanwhile the account is margined without it: a name that never comes cannot stop an account's
margin."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.instruments import Instrument, InstrumentKind
from streams.accounts.outputs import InputRef, Output
from streams.accounts.portfolio import PortfolioRecord
from streams.errors import StreamError
from streams.market.state import MarketState
from streams.records import CollateralTransfer, DlqReason, DlqRecord, Fill
from streams.topics.catalog import Topic


class AwaitingReference(StreamError):
    """An input whose instrument is not listed or whose asset is not known yet: it is held."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Held:
    """A held input: where it came from, the record, its deadline (epoch s of event time) and the
    reason it gets if the deadline passes."""

    ref: InputRef
    value: Fill | CollateralTransfer
    deadline: float
    reason: DlqReason
    detail: str
    raw: bytes | None = None  # the input's bytes as consumed (the dlq gives them back)

    @property
    def input_id(self) -> str:
        """The fill's or transfer's id."""
        return self.value.fill_id if isinstance(self.value, Fill) else self.value.transfer_id

    def to_row(self) -> list[Any]:
        """Plain data for the portfolio record."""
        kind = "fill" if isinstance(self.value, Fill) else "transfer"
        return [
            self.ref.topic,
            self.ref.partition,
            self.ref.offset,
            kind,
            self.value.model_dump(mode="json"),
            self.deadline,
            self.reason.value,
            self.detail,
            base64.b64encode(self.raw).decode() if self.raw is not None else None,
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> Held:
        """Inverse of to_row."""
        topic, partition, offset, kind, value, deadline, reason, detail, raw = row
        model = Fill if kind == "fill" else CollateralTransfer
        ref = InputRef(str(topic), int(partition), int(offset))
        data = base64.b64decode(raw) if raw is not None else None
        return cls(
            ref, model.model_validate(value), float(deadline), DlqReason(reason), detail, data
        )


def hold(
    record: PortfolioRecord,
    ref: InputRef,
    value: Fill | CollateralTransfer,
    waiting: AwaitingReference,
    market: MarketState,
    raw: bytes | None,
) -> None:
    """Keep an input in its account's record until its reference comes or its deadline; its
    offset counts as handled (a replay does not hold it twice), its id is not applied yet."""
    start = max(market.as_of, value.ts.timestamp())
    deadline = start + market.params.inputs.hold_s
    held = Held(ref, value, deadline, waiting.reason, waiting.detail, raw)
    record.held.append(held.to_row())
    record.mark_offset(ref.topic, ref.offset)


def held_ids(record: PortfolioRecord) -> set[str]:
    """The ids of a record's held inputs (a copy at another offset is a duplicate)."""
    return {Held.from_row(row).input_id for row in record.held}


def is_ready(value: Fill | CollateralTransfer, market: MarketState) -> bool:
    """True when the reference a held input waits for has reached the partition."""
    if isinstance(value, Fill):
        return is_listed(market.instruments.get(value.instrument), market)
    return is_known_asset(value.asset, market)


def is_listed(inst: Instrument, market: MarketState) -> bool:
    """A contract on the instruments topic, or a spot pair of a known asset."""
    if inst.kind is InstrumentKind.SPOT:
        return is_known_asset(inst.underlying, market)
    return inst.name in market.instruments


def is_known_asset(asset: str, market: MarketState) -> bool:
    """An asset someone prices or lists: collateral the parameters name (the settlement
    currency, a stablecoin, ``inputs.collateral_assets``), a name with a mark, or the
    underlying of a listed instrument."""
    return (
        market.params.is_unlisted_collateral(asset)
        or asset in market.marks
        or any(i.underlying == asset for i in market.instruments.instruments)
    )


def refused(held: Held, reason: DlqReason, detail: str, ts: datetime) -> DlqRecord:
    """The dlq record of a held input refused when released, or when its deadline passed: its
    origin, key and bytes as consumed (its JSON if they were not kept)."""
    return DlqRecord(
        topic=held.ref.topic,
        partition=held.ref.partition,
        offset=held.ref.offset,
        key=held.value.account.encode(),
        value=held.raw if held.raw is not None else held.value.model_dump_json().encode(),
        reason=reason,
        detail=detail[:500],
        ts=ts,
    )


def past_deadline(held: Held, ts: datetime) -> DlqRecord:
    """The dlq record of a held input whose reference never came."""
    deadline = datetime.fromtimestamp(held.deadline, tz=UTC).isoformat()
    detail = f"{held.detail}; held until {deadline} (inputs.hold_s) and nothing came"
    return refused(held, held.reason, detail, ts)


def passed(held: Held, market: MarketState) -> bool:
    """True when a held input's deadline has passed on the clock of what it waits for: a
    listing stamped after it (the instruments topic moved on without listing the name), or a
    mark stamped after it (the prices moved on without pricing the asset); and in any case once
    the partition's event time is ``inputs.max_age_s`` past it (when nothing is listed any more).
    Event time may jump ahead on a market topic (a backfill, a replay) while a listing is on its
    way on another: the partition's own event time alone would refuse it too early."""
    clock = market.listed_as_of if isinstance(held.value, Fill) else market.marked_as_of
    latest = market.as_of - market.params.inputs.max_age_s
    return max(clock, latest) > held.deadline


def release(
    records: Mapping[str, PortfolioRecord],
    holding: set[str],
    market: MarketState,
    ts: datetime,
    apply: Callable[[PortfolioRecord, Held], list[Output]],
) -> tuple[list[Output], set[str]]:
    """After a market update: each held input whose reference has come goes to ``apply`` (the
    processor's checks and application, its outputs), in order; one past its deadline goes to
    the dlq. The outputs, and the accounts whose held inputs changed (``holding`` is kept)."""
    outputs: list[Output] = []
    changed: set[str] = set()
    for account in sorted(holding):
        record = records[account]
        keep = []
        for row in record.held:
            held = Held.from_row(row)
            if is_ready(held.value, market):
                outputs += apply(record, held)
            elif passed(held, market):
                outputs.append(Output(Topic.DLQ, account, past_deadline(held, ts)))
            else:
                keep.append(row)
        if len(keep) != len(record.held):
            record.held = keep
            changed.add(account)
        if not keep:
            holding.discard(account)
    return outputs, changed
