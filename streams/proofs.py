"""Proof-of-liabilities publication (margin-model.md section 13) by the account partitions.

Epochs are windows of event time, ``params.proofs.epoch_s`` long (epoch = floor(ts / epoch_s)).
When the first market update of a later epoch reaches a partition, before applying it, the
partition closes the epoch it was in: it builds the Merkle-sum tree (engine/solvency.py) over the
liabilities of its margined accounts (masters and isolated sub-accounts; liability = max(0, E) in
cents, E from the book in one vectorised pass) with the operator's secret, and publishes
(epoch, partition, root, total, count) on solvency-proofs, keyed by the epoch. The trigger and
the state are the partition's ordered input, so a replay after a crash rebuilds the same root.

The leaves themselves (account -> cents for that epoch) are written to the changelogged table
under ``PROOF_KEY`` so that the operator's ``spma prove ACCOUNT`` (infra/commands/prove.py) can
rebuild the partition tree, check it against the published root, and give an account its path.
The combined root is not published by a worker (no worker sees every partition): it is the top
tree over the published partition roots in partition order (``engine.solvency.combine_roots``),
which anyone can recompute from the topic; ``spma prove`` prints it, extends each proof to it,
and with ``--publish`` puts it on solvency-proofs (partition null).
The secret never leaves the worker and the tool; only roots, totals and counts are published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from engine.solvency import (
    InclusionProof,
    LeafInput,
    MerkleSumTree,
    extend_proof,
    usd_to_liability_cents,
)
from streams.records import MarketUpdate, SolvencyProof
from streams.subaccounts import rows_of

if TYPE_CHECKING:
    from infra.settings import Settings
    from streams.processor import AccountProcessor, Output

PROOF_KEY = "\x00proof/{partition}"


def epoch_of(ts: float, epoch_s: float) -> int:
    """The proof epoch of an event time (epoch seconds)."""
    return int(ts // epoch_s)


def partition_liabilities(proc: AccountProcessor) -> dict[str, int]:
    """Liabilities in cents of the partition's margined accounts that the book values."""
    family = rows_of(proc.records.values())
    accounts = [a for a in family if a in proc.book and a not in proc.unpriced]
    if not accounts:
        return {}
    equity = proc.book.margin(accounts).equity
    clipped = np.maximum(np.nan_to_num(equity, nan=0.0), 0.0)
    return {a: usd_to_liability_cents(float(e)) for a, e in zip(accounts, clipped, strict=True)}


@dataclass
class ProofPublisher:
    """A partition's epoch roots: closes an epoch when event time enters a later one."""

    secret: bytes
    last: dict[str, Any] | None = None

    def on_market(self, proc: AccountProcessor, update: MarketUpdate) -> list[Output]:
        """Before a market update is applied: the previous epoch's root when it is closed."""
        params = proc.market.params.proofs
        if not params.enabled or proc.market.as_of <= 0.0:
            return []
        closing = epoch_of(proc.market.as_of, params.epoch_s)
        if epoch_of(update.ts.timestamp(), params.epoch_s) <= closing:
            return []
        return self.publish(proc, closing, update.ts)

    def publish(self, proc: AccountProcessor, epoch: int, ts: datetime) -> list[Output]:
        """Build the partition's tree for an epoch and the record that publishes its root."""
        from streams.processor import Output

        liabilities = partition_liabilities(proc)
        tree = MerkleSumTree.build(
            [LeafInput(a, c) for a, c in liabilities.items()], self.secret, epoch
        )
        self.last = {"epoch": epoch, "partition": proc.partition, "liabilities": liabilities}
        record = SolvencyProof(
            epoch=epoch,
            root_hash=tree.root_hash.hex(),
            total_liabilities_cents=tree.total_cents,
            account_count=tree.count,
            partition=proc.partition,
            ts=ts,
        )
        return [Output("solvency-proofs", str(epoch), record)]

    def take(self) -> dict[str, Any] | None:
        """The leaves of the epoch just published (once), for the table."""
        last, self.last = self.last, None
        return last


def publisher(settings: Settings) -> ProofPublisher | None:
    """A partition's publisher when the operator configured a secret (SPMA_POL_SECRET, hex)."""
    if settings.pol_secret is None:
        return None
    return ProofPublisher(bytes.fromhex("".join(settings.pol_secret.get_secret_value().split())))


def save_leaves(table: Any, proc: AccountProcessor) -> None:
    """Write the leaves of an epoch just published to the (changelogged) table."""
    leaves = proc.prover.take() if proc.prover else None
    if leaves is not None:
        table[PROOF_KEY.format(partition=proc.partition)] = orjson.dumps(leaves)


def leaves_from_changelog(records: list[tuple[bytes | None, bytes | None]]) -> dict[int, Any]:
    """The latest leaves record of each partition from the table's changelog (key, value) pairs."""
    found: dict[int, Any] = {}
    for key, value in records:
        if key is None or value is None:
            continue
        try:
            name = orjson.loads(key)
        except orjson.JSONDecodeError:
            continue
        if isinstance(name, str) and name.startswith("\x00proof/"):
            data = orjson.loads(value)
            found[int(data["partition"])] = data
    return found


def combined_proof(
    account: str,
    roots: list[SolvencyProof],
    leaves: dict[int, Any],
    partitions: int,
    secret: bytes,
    epoch: int | None = None,
) -> tuple[InclusionProof, MerkleSumTree]:
    """An account's proof against the combined root of an epoch (the latest with its leaves).

    Rebuilds the account's partition tree from the leaves the worker kept, checks it against the
    partition root published on solvency-proofs, builds the top tree over every partition's
    published root (in partition order) and extends the proof to it. ValueError with the reason
    when the data is incomplete or does not match what was published.
    """
    mine = [
        (p, data)
        for p, data in leaves.items()
        if account in data["liabilities"] and (epoch is None or data["epoch"] == epoch)
    ]
    if not mine:
        raise ValueError(f"account {account!r}: no leaves for it in the latest epoch")
    p, data = max(mine, key=lambda item: item[1]["epoch"])
    chosen = int(data["epoch"])
    published = {r.partition: r for r in roots if r.epoch == chosen and r.partition is not None}
    missing = [q for q in range(partitions) if q not in published]
    if missing:
        raise ValueError(f"epoch {chosen}: no published root yet for partitions {missing}")
    tree = MerkleSumTree.build(
        [LeafInput(a, int(c)) for a, c in data["liabilities"].items()], secret, chosen
    )
    root = published[p]
    if (tree.root_hash.hex(), tree.total_cents) != (root.root_hash, root.total_liabilities_cents):
        raise ValueError(
            f"epoch {chosen}, partition {p}: the rebuilt root differs from the published one "
            "(wrong secret, or the leaves do not match)"
        )
    top = MerkleSumTree.from_nodes(
        [
            (bytes.fromhex(published[q].root_hash), published[q].total_liabilities_cents)
            for q in range(partitions)
        ],
        chosen,
    )
    return extend_proof(tree.proof(account), top, p), top
