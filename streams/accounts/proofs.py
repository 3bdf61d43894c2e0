"""Proof-of-liabilities publication (margin-model.md section 13) by the account partitions.

Epochs are windows of event time, ``params.proofs.epoch_s`` long (epoch = floor(ts / epoch_s)).
When the first market update of a later epoch reaches a partition, before applying it, the
partition closes the epoch it was in: it builds the Merkle-sum tree (engine/solvency.py) over the
liabilities of its margined accounts (masters and isolated sub-accounts; liability = max(0, E) in
cents, E from the book in one vectorised pass) with the operator's secret, and publishes
(epoch, partition, root, total, count) on solvency-proofs, keyed by the epoch. The trigger and
the state are the partition's ordered input, so a replay after a crash rebuilds the same root.

The leaves themselves (account -> cents for that epoch) are written to the changelogged table
under ``PROOF_KEY``, one key per partition and epoch, so that the operator's ``spma prove ACCOUNT
--epoch N`` (streams/cli/commands/prove.py) can rebuild the partition tree of any epoch still kept,
check it against the published root, and give an account its path. A partition keeps the leaves
of its newest ``SPMA_PROOF_EPOCHS_KEPT`` epochs (a week of hourly epochs by default; the list is
under ``PROOF_EPOCHS_KEY``): publishing a newer one deletes the oldest (a tombstone in the
changelog), so the compacted changelog holds exactly the epochs kept.
The combined root is not published by a worker (no worker sees every partition): it is the top
tree over the published partition roots in partition order (``engine.solvency.combine_roots``),
which anyone can recompute from the topic; ``spma prove`` prints it, extends each proof to it,
and with ``--publish`` puts it on solvency-proofs (partition null).
The secret never leaves the worker and the tool; only roots, totals and counts are published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson

from engine.book import MarginBook
from engine.solvency import (
    InclusionProof,
    LeafInput,
    MerkleSumTree,
    extend_proof,
    usd_to_liability_cents,
)
from infra.settings import Settings
from streams.accounts.outputs import Output
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.subaccounts import rows_of
from streams.market.state import MarketState
from streams.records import MarketUpdate, SolvencyProof
from streams.topics.catalog import Topic

PROOF_KEY = "\x00proof/{partition}/{epoch}"
PROOF_EPOCHS_KEY = "\x00proof-epochs/{partition}"
DEFAULT_EPOCHS_KEPT = 168


class Partition(Protocol):
    """What a proof needs of an account partition (its processor)."""

    partition: int
    records: dict[str, PortfolioRecord]
    book: MarginBook
    unpriced: set[str]
    market: MarketState
    prover: ProofPublisher | None


def epoch_of(ts: float, epoch_s: float) -> int:
    """The proof epoch of an event time (epoch seconds)."""
    return int(ts // epoch_s)


def partition_liabilities(proc: Partition) -> dict[str, int]:
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
    kept: int = DEFAULT_EPOCHS_KEPT
    last: dict[str, Any] | None = None

    def on_market(self, proc: Partition, update: MarketUpdate) -> list[Output]:
        """Before a market update is applied: the previous epoch's root when it is closed."""
        params = proc.market.params.proofs
        if not params.enabled or proc.market.as_of <= 0.0:
            return []
        closing = epoch_of(proc.market.as_of, params.epoch_s)
        if epoch_of(update.ts.timestamp(), params.epoch_s) <= closing:
            return []
        return self.publish(proc, closing, update.ts)

    def publish(self, proc: Partition, epoch: int, ts: datetime) -> list[Output]:
        """Build the partition's tree for an epoch and the record that publishes its root."""
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
        return [Output(Topic.SOLVENCY_PROOFS, str(epoch), record)]

    def take(self) -> dict[str, Any] | None:
        """The leaves of the epoch just published (once), for the table."""
        last, self.last = self.last, None
        return last


def publisher(settings: Settings) -> ProofPublisher | None:
    """A partition's publisher when the operator configured a secret (SPMA_POL_SECRET, hex)."""
    secret = settings.pol_secret_bytes()
    if secret is None:
        return None
    return ProofPublisher(secret, kept=settings.proof_epochs_kept)


def save_leaves(table: Any, proc: Partition) -> None:
    """Write the leaves of an epoch just published to the (changelogged) table, under a key of
    its own, and delete the leaves of epochs beyond the partition's retention."""
    leaves = proc.prover.take() if proc.prover else None
    if leaves is None or proc.prover is None:
        return
    partition, epoch = proc.partition, int(leaves["epoch"])
    table[PROOF_KEY.format(partition=partition, epoch=epoch)] = orjson.dumps(leaves)
    index = PROOF_EPOCHS_KEY.format(partition=partition)
    raw = table.get(index)
    epochs = sorted({*(orjson.loads(raw) if raw else []), epoch})
    for old in epochs[: max(len(epochs) - proc.prover.kept, 0)]:
        key = PROOF_KEY.format(partition=partition, epoch=old)
        if table.get(key) is not None:
            del table[key]
    table[index] = orjson.dumps(epochs[-proc.prover.kept :])


Leaves = dict[tuple[int, int], Any]
"""Leaves records by (partition, epoch)."""


def leaves_from_changelog(records: list[tuple[bytes | None, bytes | None]]) -> Leaves:
    """Every epoch's leaves that the table's changelog (key, value pairs, in order) still holds,
    by (partition, epoch): a later record of a key replaces an earlier one, a tombstone (the
    epoch deleted past its retention) removes it."""
    found: Leaves = {}
    named: dict[str, tuple[int, int]] = {}
    for key, value in records:
        if key is None:
            continue
        try:
            name = orjson.loads(key)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(name, str) or not name.startswith("\x00proof/"):
            continue
        if value is None:
            gone = named.pop(name, None)
            if gone is not None:
                found.pop(gone, None)
            continue
        data = orjson.loads(value)
        where = (int(data["partition"]), int(data["epoch"]))
        named[name] = where
        found[where] = data
    return found


def _no_leaves(account: str, leaves: Leaves, epoch: int | None) -> str:
    """Why an account has no proof: the epoch asked for, and the epochs that are kept."""
    kept = sorted({e for _, e in leaves})
    held = f"epochs kept: {kept[0]} to {kept[-1]}" if kept else "no epoch's leaves are kept"
    if epoch is None:
        return f"account {account!r}: no leaves for it in any epoch kept ({held})"
    if kept and epoch < kept[0]:
        return (
            f"account {account!r}: epoch {epoch} is older than the epochs kept ({held}; "
            "SPMA_PROOF_EPOCHS_KEPT sets how many)"
        )
    return f"account {account!r}: no leaves for it in epoch {epoch} ({held})"


def combined_proof(
    account: str,
    roots: list[SolvencyProof],
    leaves: Leaves,
    partitions: int,
    secret: bytes,
    epoch: int | None = None,
) -> tuple[InclusionProof, MerkleSumTree]:
    """An account's proof against the combined root of an epoch (the given one, else the latest
    with its leaves).

    Rebuilds the account's partition tree from the leaves the worker kept, checks it against the
    partition root published on solvency-proofs, builds the top tree over every partition's
    published root (in partition order) and extends the proof to it. ValueError with the reason
    (naming the epoch asked for) when the data is incomplete or does not match what was
    published.
    """
    mine = [
        (p, data)
        for (p, e), data in leaves.items()
        if account in data["liabilities"] and (epoch is None or e == epoch)
    ]
    if not mine:
        raise ValueError(_no_leaves(account, leaves, epoch))
    p, data = max(mine, key=lambda item: int(item[1]["epoch"]))
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
