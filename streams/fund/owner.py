"""The insurance fund's single owner (margin-model.md section 10), free of Kafka.

It reads the single-partition claims topic: liquidation fees (into the fund), ADL candidates
(each account partition's latest batch) and bankruptcy claims. A claim is paid as far as the
balance goes (a PAYOUT event and an INSURANCE_PAYOUT transfer back to the account); the rest is a
SHORTFALL that ADL absorbs: the bankrupt account's open positions are closed against the
top-ranked opposite positions at the bankruptcy price, each reduction's amount being what the
counterparty gives up against the mark. The shortfall is split over the positions by notional,
to the cent, so that deficits = payouts + ADL amounts. What no candidate covers yet waits in
``pending`` and is closed as new batches arrive (a claim may reach the owner before the
counterparties' partitions publish); a position no counterparty covers within
``pending_timeout_s`` of event time goes to the book as a BANKRUPTCY order, and its share, like a
deficit with no position left and no fund to pay it, is ``uncovered``: counted, never hidden.
A claim's positions are closed by ADL even when the fund covers it all (at the mark, amount 0):
the fund never holds positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.insurance import InsuranceFund, fits_cents, plan_adl, to_cents
from streams.accounts.adl import Candidate
from streams.accounts.outputs import Output
from streams.accounts.subaccounts import master_of, split_row
from streams.errors import InputRejected
from streams.ids import deterministic_id
from streams.records import (
    AdlCandidate,
    AdlOrder,
    ClaimPosition,
    CollateralTransfer,
    DlqReason,
    InsuranceClaim,
    InsuranceFundEvent,
    LiquidationFee,
    LiquidationOrder,
    Side,
    TransferKind,
)
from streams.topics.catalog import Topic

FUND_KEY = "fund/{currency}"


@dataclass
class _Pending:
    """Part of a claim's position that ADL has yet to close, with its share of the shortfall."""

    claim: InsuranceClaim
    position: ClaimPosition
    share_cents: int
    sequence: int = 0


def fund_event_id(kind: str, reference: str) -> str:
    """The id of the fund's event of a kind (FEE, PAYOUT, SHORTFALL) for a fee or claim id."""
    return deterministic_id("fund", kind, reference)


def check_fund_input(value: InsuranceClaim | LiquidationFee | AdlCandidate) -> None:
    """Every amount the fund would book fits its cents (engine.insurance.MAX_CENTS), or the
    input is refused (OUT_OF_RANGE): no figure a record can carry stops the fund."""
    amounts: dict[str, float] = {}
    if isinstance(value, InsuranceClaim):
        amounts = {"deficit": value.deficit, "payouts_received": value.payouts_received}
        for i, pos in enumerate(value.positions):
            amounts[f"positions[{i}]"] = pos.qty * pos.mark * pos.unit_value
    elif isinstance(value, LiquidationFee):
        amounts = {"amount": value.amount}
    for name, usd in amounts.items():
        if not fits_cents(usd):
            raise InputRejected(
                DlqReason.OUT_OF_RANGE, f"{name}: {usd:g} USD is beyond what the fund books"
            )


@dataclass
class FundOwner:
    """The fund ledger, the ADL candidates by partition, and the reconciliation totals (cents)."""

    currency: str = "USD"
    settlement_asset: str = "USD"
    fund: InsuranceFund = field(default_factory=InsuranceFund)
    batches: dict[int, tuple[float, list[Candidate]]] = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)
    pending_timeout_s: float = 30.0
    takeover_slippage: float = 0.5
    now: float = 0.0
    fees_cents: int = 0
    deficits_cents: int = 0
    payouts_cents: int = 0
    adl_cents: int = 0
    uncovered_cents: int = 0
    paid_by_account: dict[str, int] = field(default_factory=dict)  # payouts sent, cents

    # ----- inputs -----------------------------------------------------------------------

    def on_fee(self, fee: LiquidationFee) -> list[Output]:
        """Take a liquidation fee once; its FEE event."""
        self.now = max(self.now, fee.ts.timestamp())
        event = self.fund.fee(fee.amount, fee.account, fee.fee_id)
        if event is None:
            return []
        self.fees_cents += event.amount_cents
        return [self._event_output(event, fee.ts)]

    def on_candidate(self, cand: AdlCandidate) -> None:
        """Keep a partition's latest batch of candidates (a newer batch replaces it; a
        candidate sent again, e.g. by a partition's new owner after a crash, replaces its
        earlier copy instead of counting twice)."""
        ts = cand.ts.timestamp()
        self.now = max(self.now, ts)
        current = self.batches.get(cand.partition)
        if current is None or ts > current[0]:
            current = (ts, [])
            self.batches[cand.partition] = current
        elif ts < current[0]:
            return
        fresh = Candidate(cand.account, cand.instrument, cand.qty, cand.rank_score)
        key = (fresh.account, fresh.instrument)
        same = [i for i, c in enumerate(current[1]) if (c.account, c.instrument) == key]
        if same:
            current[1][same[0]] = fresh
        else:
            current[1].append(fresh)

    def on_claim(self, claim: InsuranceClaim) -> list[Output]:
        """Pay what the fund can, ADL the rest; the events, the payout and the ADL orders.

        The deficit the account reports still counts payouts on their way to it (a claim
        repeated before the last payout landed): what was paid beyond what the account says it
        received is taken off, so that no deficit is paid twice."""
        self.now = max(self.now, claim.ts.timestamp())
        in_flight = self.paid_by_account.get(claim.account, 0) - to_cents(claim.payouts_received)
        deficit = claim.deficit - max(in_flight, 0) / 100.0
        result = self.fund.claim(deficit, claim.account, claim.claim_id)
        if not result.events:
            return []
        self.deficits_cents += result.paid_cents + result.shortfall_cents
        self.payouts_cents += result.paid_cents
        if result.paid_cents:
            paid = self.paid_by_account.get(claim.account, 0) + result.paid_cents
            self.paid_by_account[claim.account] = paid
        outputs = [self._event_output(e, claim.ts) for e in result.events]
        if result.paid_cents > 0:
            outputs.append(self._payout(claim, result.paid_cents))
        outputs += self._deleverage(claim, result.shortfall_cents)
        return outputs

    # ----- outputs ----------------------------------------------------------------------

    def _event_output(self, event: Any, ts: datetime) -> Output:
        """An insurance-fund event record (USD amounts, the balance after it)."""
        record = InsuranceFundEvent(
            event_id=fund_event_id(event.kind.value, event.reference),
            currency=self.currency,
            kind=event.kind,
            amount=event.amount_cents / 100.0,
            balance_after=event.balance_after_cents / 100.0,
            account=event.account,
            ts=ts,
        )
        return Output(Topic.INSURANCE_FUND, self.currency, record)

    def _payout(self, claim: InsuranceClaim, cents: int) -> Output:
        """The payout, back to the account as an INSURANCE_PAYOUT collateral transfer."""
        master, sub = split_row(claim.account)
        transfer = CollateralTransfer(
            transfer_id=deterministic_id("payout", claim.claim_id),
            account=master,
            sub_account=sub,
            asset=self.settlement_asset,
            amount=cents / 100.0,
            kind=TransferKind.INSURANCE_PAYOUT,
            ts=claim.ts,
        )
        return Output(Topic.COLLATERAL, master, transfer)

    def _deleverage(self, claim: InsuranceClaim, shortfall_cents: int) -> list[Output]:
        """Close the claim's positions against ranked counterparties; the shortfall split."""
        positions = sorted(claim.positions, key=lambda p: -abs(p.qty) * p.mark * p.unit_value)
        shares = _split(shortfall_cents, [abs(p.qty) * p.mark * p.unit_value for p in positions])
        if not positions:
            self.uncovered_cents += shortfall_cents
        for position, share in zip(positions, shares, strict=True):
            self.pending.append(_Pending(claim, position, share))
        return self.retry()

    def retry(self, takeover: bool = False) -> list[Output]:
        """ADL what pending closes the candidates now allow (new batches may cover them).

        Only ``takeover`` (the owner's timer, when the claims topic is quiet) hands positions
        past the timeout to the book: a retry on an arriving candidate may see a partition's
        batch half-read, and must not give up on a position its next record covers."""
        outputs: list[Output] = []
        waiting: list[_Pending] = []
        for item in self.pending:
            done, left = self._close(item, takeover)
            outputs += done
            if left is not None:
                waiting.append(left)
        self.pending = waiting
        return outputs

    def _close(self, item: _Pending, takeover: bool) -> tuple[list[Output], _Pending | None]:
        """ADL orders closing what the candidates cover of one position, absorbing its share;
        what no candidate covers yet stays pending (its share with it if nothing was covered)."""
        claim, position, share = item.claim, item.position, item.share_cents
        pool = self._opposite(position)
        covered = min(abs(position.qty), sum(abs(c.qty) for c in pool))
        if covered <= 1e-12:
            if not takeover or self.now - claim.ts.timestamp() < self.pending_timeout_s:
                return [], item
            return [self._takeover(item)], None
        sign = 1.0 if position.qty > 0 else -1.0
        price = position.mark + sign * share / 100.0 / (covered * position.unit_value)
        price = max(price, position.mark * 1e-6)  # a short is never bought back at or below 0
        reductions = plan_adl(share, sign * covered, price, pool)
        self.adl_cents += sum(r.amount_cents for r in reductions)
        self._consume(reductions)
        item.sequence += len(reductions)
        outputs = [
            Output(
                Topic.ADL,
                master_of(r.account),
                AdlOrder(
                    adl_id=deterministic_id(
                        "adl", claim.claim_id, position.instrument, item.sequence - n
                    ),
                    account=r.account,
                    instrument=r.instrument,
                    side=Side.BUY if r.qty > 0 else Side.SELL,
                    qty=abs(r.qty),
                    price=r.price,
                    counterparty_account=claim.account,
                    amount=r.amount_cents / 100.0,
                    claim_id=claim.claim_id,
                    ts=claim.ts,
                ),
            )
            for n, r in enumerate(reductions)
        ]
        left_qty = abs(position.qty) - covered
        if left_qty <= 1e-9 * abs(position.qty):
            return outputs, None
        rest = position.model_copy(update={"qty": sign * left_qty})
        return outputs, _Pending(claim, rest, 0, item.sequence)

    def _takeover(self, item: _Pending) -> Output:
        """No counterparty came in time: the fund hands the position to the book (a BANKRUPTCY
        order, limit wide of the mark); its share of the shortfall is uncovered, and the loss the
        book makes comes back as a new claim once the position is closed."""
        claim, position = item.claim, item.position
        self.uncovered_cents += item.share_cents
        sell = position.qty > 0
        slip = self.takeover_slippage
        order = LiquidationOrder(
            order_id=deterministic_id(
                "takeover", claim.claim_id, position.instrument, item.sequence
            ),
            account=claim.account,
            instrument=position.instrument,
            side=Side.SELL if sell else Side.BUY,
            qty=abs(position.qty),
            limit_price=position.mark * ((1.0 - slip) if sell else (1.0 + slip)),
            reason="BANKRUPTCY",
            sequence=item.sequence,
            ts=claim.ts,
        )
        return Output(Topic.LIQUIDATIONS, master_of(claim.account), order)

    def _opposite(self, position: ClaimPosition) -> list[Candidate]:
        """Candidates on the other side of a position in its instrument, from every partition."""
        return [
            c
            for _, batch in self.batches.values()
            for c in batch
            if c.instrument == position.instrument and c.qty * position.qty < 0 and c.score > 0
        ]

    def _consume(self, reductions: list[Any]) -> None:
        """Shrink the candidates ADL used, so that no quantity is deleveraged twice."""
        used = {(r.account, r.instrument): abs(r.qty) for r in reductions}
        for _, batch in list(self.batches.values()):
            for i, c in enumerate(batch):
                take = used.get((c.account, c.instrument), 0.0)
                if take > 0.0:
                    left = (abs(c.qty) - take) / abs(c.qty)
                    batch[i] = Candidate(c.account, c.instrument, c.qty * left, c.score)
        for partition, (ts, batch) in list(self.batches.items()):
            self.batches[partition] = (ts, [c for c in batch if abs(c.qty) > 1e-12])

    # ----- state ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (the fund owner's table value)."""
        return {
            "currency": self.currency,
            "settlement_asset": self.settlement_asset,
            "balance_cents": self.fund.balance_cents,
            "seen": sorted(self.fund.seen),
            "batches": {str(p): [ts, batch_rows(batch)] for p, (ts, batch) in self.batches.items()},
            "pending": [
                [
                    p.claim.model_dump(mode="json"),
                    p.position.model_dump(),
                    p.share_cents,
                    p.sequence,
                ]
                for p in self.pending
            ],
            "now": self.now,
            "paid_by_account": self.paid_by_account,
            "totals": [
                self.fees_cents,
                self.deficits_cents,
                self.payouts_cents,
                self.adl_cents,
                self.uncovered_cents,
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FundOwner:
        """Inverse of to_dict."""
        fund = InsuranceFund(data["currency"], int(data["balance_cents"]), [], set(data["seen"]))
        batches = {
            int(p): (float(ts), batch_from_rows(batch))
            for p, (ts, batch) in data["batches"].items()
        }
        pending = [
            _Pending(InsuranceClaim.model_validate(c), ClaimPosition.model_validate(p), s, n)
            for c, p, s, n in data.get("pending", [])
        ]
        owner = cls(data["currency"], data["settlement_asset"], fund, batches, pending)
        owner.now = float(data.get("now", 0.0))
        owner.paid_by_account = {a: int(c) for a, c in data.get("paid_by_account", {}).items()}
        (
            owner.fees_cents,
            owner.deficits_cents,
            owner.payouts_cents,
            owner.adl_cents,
            owner.uncovered_cents,
        ) = (int(x) for x in data["totals"])
        return owner


def batch_rows(batch: list[Candidate]) -> list[list[Any]]:
    """A batch of candidates as JSON-ready rows: [account, instrument, qty, score]."""
    return [[c.account, c.instrument, c.qty, c.score] for c in batch]


def batch_from_rows(rows: list[list[Any]]) -> list[Candidate]:
    """Inverse of batch_rows."""
    return [Candidate(a, i, float(q), float(s)) for a, i, q, s in rows]


def _split(total_cents: int, weights: list[float]) -> list[int]:
    """Integer cents proportional to weights, summing to the total exactly (largest last)."""
    if not weights:
        return []
    whole = sum(weights)
    if whole <= 0.0:
        shares = [0] * len(weights)
        shares[0] = total_cents
        return shares
    shares = [int(total_cents * w / whole) for w in weights]
    shares[0] += total_cents - sum(shares)
    return shares


__all__ = ["FUND_KEY", "FundOwner", "to_cents"]
