"""One account's portfolio record as the stream keeps it: the value of the portfolio table.

It holds positions (quantity, average entry, realised PnL), collateral by asset, the offset of the
last input applied from each topic and a window of recent fill and transfer ids, so that a replay
never applies an input twice, and the outbox (accounts/outbox.py): the encoded outputs of its
latest inputs, so that a replay re-sends what a crash may have lost. Fills move cash: linear PnL
is realised in the settlement currency, inverse PnL in the coin, option premiums and fees in the
settlement currency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.fills import EPSILON, fill_outcome
from engine.instruments import Instrument, InstrumentKind

RECENT_IDS = 1024  # fill/transfer ids remembered per account (duplicates with another offset)


@dataclass
class PositionRecord:
    """A position: signed quantity, average entry price, PnL realised so far (USD)."""

    qty: float
    entry: float
    realised: float = 0.0


@dataclass(frozen=True)
class FillEffect:
    """What a fill did: the position after it and the cash it moved."""

    instrument: str
    qty_after: float
    entry_after: float
    realised_usd: float
    cash: dict[str, float]


@dataclass
class PortfolioRecord:
    """An account's whole state in the portfolio table.

    A master's record holds its family: ``positions`` and ``collateral`` are the cross-margined
    family's (the master's own and every non-isolated sub-account's fills and transfers, shared
    collateral), and ``subs`` one record per named sub-account (accounts/subaccounts.py): for an
    ``isolated`` one, the positions and collateral it is margined on alone; for the others, its
    own positions and transfers, kept for its standalone requirement only.
    """

    account: str
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    collateral: dict[str, float] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    recent_ids: list[str] = field(default_factory=list)
    state: str = "HEALTHY"
    last_call_ts: float | None = None
    call_sequence: int = 0
    liquidation_ts: float | None = None
    liquidation_sequence: int = 0
    claim_ts: float | None = None
    claim_sequence: int = 0
    claimed: list[str] = field(default_factory=list)
    payouts_received: float = 0.0  # USD of INSURANCE_PAYOUT transfers applied (claims say it)
    status_sequence: int = 0
    last_ratio: float | None = None
    partition: int = -1
    isolated: bool = False
    first_ts: float | None = None  # a sub-account's earliest input by event time (epoch s)
    subs: dict[str, PortfolioRecord] = field(default_factory=dict)
    outbox: list[list[Any]] = field(default_factory=list)
    held: list[list[Any]] = field(default_factory=list)  # inputs awaiting their listing/price

    def already_applied(self, topic: str, offset: int, input_id: str) -> str | None:
        """Why an input must not be applied again ('offset' or 'duplicate'), or None."""
        if offset <= self.offsets.get(topic, -1):
            return "offset"
        if input_id in self.recent_ids:
            return "duplicate"
        return None

    def mark_applied(self, topic: str, offset: int, input_id: str) -> None:
        """Record an applied input: its offset and its id in the bounded window."""
        self.mark_offset(topic, offset)
        self.recent_ids.append(input_id)
        if len(self.recent_ids) > RECENT_IDS:
            del self.recent_ids[: len(self.recent_ids) - RECENT_IDS]

    def mark_offset(self, topic: str, offset: int) -> None:
        """An input of the topic handled up to this offset (a replay of it is skipped)."""
        self.offsets[topic] = max(offset, self.offsets.get(topic, -1))

    def add_collateral(self, asset: str, amount: float) -> None:
        """Move a signed amount of an asset in or out."""
        balance = self.collateral.get(asset, 0.0) + amount
        if abs(balance) < EPSILON:
            self.collateral.pop(asset, None)
        else:
            self.collateral[asset] = balance

    def has_positions(self) -> bool:
        """True while any derivative position is open."""
        return bool(self.positions)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the table value)."""
        return {
            "account": self.account,
            "positions": {k: [p.qty, p.entry, p.realised] for k, p in self.positions.items()},
            "collateral": self.collateral,
            "offsets": self.offsets,
            "recent_ids": self.recent_ids,
            "state": self.state,
            "last_call_ts": self.last_call_ts,
            "call_sequence": self.call_sequence,
            "liquidation_ts": self.liquidation_ts,
            "liquidation_sequence": self.liquidation_sequence,
            "claim_ts": self.claim_ts,
            "claim_sequence": self.claim_sequence,
            "claimed": self.claimed,
            "payouts_received": self.payouts_received,
            "status_sequence": self.status_sequence,
            "last_ratio": self.last_ratio,
            "partition": self.partition,
            "isolated": self.isolated,
            "first_ts": self.first_ts,
            "subs": {name: sub.to_dict() for name, sub in self.subs.items()},
            "outbox": self.outbox,
            "held": self.held,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PortfolioRecord:
        """Inverse of to_dict."""
        return cls(
            account=data["account"],
            positions={k: PositionRecord(*v) for k, v in data["positions"].items()},
            collateral=dict(data["collateral"]),
            offsets=dict(data["offsets"]),
            recent_ids=list(data["recent_ids"]),
            state=data["state"],
            last_call_ts=data["last_call_ts"],
            call_sequence=data["call_sequence"],
            liquidation_ts=data.get("liquidation_ts"),
            liquidation_sequence=data.get("liquidation_sequence", 0),
            claim_ts=data.get("claim_ts"),
            claim_sequence=data.get("claim_sequence", 0),
            claimed=list(data.get("claimed", [])),
            payouts_received=float(data.get("payouts_received", 0.0)),
            status_sequence=data.get("status_sequence", 0),
            last_ratio=data.get("last_ratio"),
            partition=data.get("partition", -1),
            isolated=data.get("isolated", False),
            first_ts=data.get("first_ts"),
            subs={name: cls.from_dict(sub) for name, sub in data.get("subs", {}).items()},
            outbox=list(data.get("outbox", [])),
            held=list(data.get("held", [])),
        )

    def to_json(self) -> bytes:
        """The portfolio table's value of the record (JSON of ``to_dict``)."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> PortfolioRecord:
        """A record from its portfolio table value."""
        return cls.from_dict(orjson.loads(raw))


def apply_fill(
    record: PortfolioRecord,
    inst: Instrument,
    signed_qty: float,
    price: float,
    fee: float,
    settlement: str = "USD",
) -> FillEffect:
    """Apply one fill to the record and return its effect (cash moved, realised PnL)."""
    pos = record.positions.get(inst.name)
    old_qty, old_entry = (pos.qty, pos.entry) if pos else (0.0, price)
    out = fill_outcome(inst, old_qty, old_entry, signed_qty, price, fee, settlement)
    if inst.kind is not InstrumentKind.SPOT:
        _store_position(record, inst.name, out.qty, out.entry, out.realised_usd)
    for asset, amount in out.cash.items():
        if amount:
            record.add_collateral(asset, amount)
    final = record.positions.get(inst.name)
    return FillEffect(
        inst.name,
        final.qty if final else 0.0,
        final.entry if final else 0.0,
        out.realised_usd,
        out.cash,
    )


def _store_position(
    record: PortfolioRecord, name: str, qty: float, entry: float, realised: float
) -> None:
    """Write the position back, dropping it when closed."""
    old = record.positions.get(name)
    total_realised = (old.realised if old else 0.0) + realised
    if abs(qty) < EPSILON:
        record.positions.pop(name, None)
    else:
        record.positions[name] = PositionRecord(qty, entry, total_realised)


def detach(
    family: PortfolioRecord,
    part: PortfolioRecord,
    instrument: Callable[[str], Instrument],
    settlement: str = "USD",
) -> None:
    """Take a member's own contributions (its collateral and positions, which the family's
    record also holds) out of the family's record, exactly as far as valuation goes: the
    family's collateral loses the member's, and each position keeps the quantity and the
    profit-and-loss line that remain (q_f = q - q_m; for a linear future q_f * e_f = q * e -
    q_m * e_m, for an inverse one q_f / e_f = q / e - q_m / e_m; a position that closes leaves
    the constant as cash), so that PnL(mark) of the whole = the member's + the rest's for every
    mark.
    Used when a sub-account declared isolated turns out to have been
    margined with the family first (its declaring input arrived after its first trades)."""
    for asset, amount in part.collateral.items():
        family.add_collateral(asset, -amount)
    for name, mine in part.positions.items():
        whole = family.positions.get(name) or PositionRecord(0.0, mine.entry)
        inst = instrument(name)
        qty = whole.qty - mine.qty
        realised = whole.realised - mine.realised
        if inst.kind is InstrumentKind.OPTION:  # premiums were cash; the value is qty's
            line, entry = 0.0, whole.entry
        elif inst.inverse:
            line = whole.qty / whole.entry - mine.qty / mine.entry
            entry = qty / line if abs(qty) >= EPSILON and line else whole.entry
        else:
            line = whole.qty * whole.entry - mine.qty * mine.entry
            entry = line / qty if abs(qty) >= EPSILON else whole.entry
        if abs(qty) < EPSILON:
            family.positions.pop(name, None)
            if inst.inverse and line:  # coins, as _closed_pnl counts them
                family.add_collateral(inst.underlying, line)
            elif line and inst.kind is not InstrumentKind.OPTION:
                family.add_collateral(settlement, -line * inst.contract_size)
        else:
            family.positions[name] = PositionRecord(qty, entry, realised)
