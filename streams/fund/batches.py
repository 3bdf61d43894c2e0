"""The fund owner's ADL candidates in its table, one key per account partition, written as each
candidate record is read.

Why. The fund's whole state is written when an input changes its ledger (a fee, a claim, an ADL
order); a candidate record only replaces a partition's batch, and writing the whole state (every
fee and claim id seen) for each of a batch's hundreds of records would cost more than the rest of
the fund. But the consumer commits a candidate's offset once it is read: after a crash, a batch
held only in memory was lost, and a claim that came next found no counterparty (no ADL order,
only the book's takeover). A partition's batch alone is small, so it is written at once."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from streams.fund.owner import FUND_KEY, FundOwner, batch_from_rows, batch_rows

BATCH_KEY = FUND_KEY + "/candidates/{partition}"
"""A partition's latest batch: [ts, [[account, instrument, qty, score], ...]]."""


def batch_key(currency: str, partition: int) -> str:
    """The table key of an account partition's batch."""
    return BATCH_KEY.format(currency=currency, partition=partition)


def save_batch(table: MutableMapping[str, Any], owner: FundOwner, partition: int) -> None:
    """Write one partition's batch as the owner holds it now."""
    ts, batch = owner.batches[partition]
    table[batch_key(owner.currency, partition)] = orjson.dumps([ts, batch_rows(batch)])


def save_batches(table: MutableMapping[str, Any], owner: FundOwner) -> None:
    """Write every partition's batch (with the whole state: ADL shrinks the batches it used)."""
    for partition in owner.batches:
        save_batch(table, owner, partition)


def load_batches(table: MutableMapping[str, Any], owner: FundOwner) -> None:
    """Replace the owner's batches with those written on their own keys (never older than the
    whole state's: each is written with it, and on each candidate read after it)."""
    prefix = batch_key(owner.currency, 0).removesuffix("0")
    for key, raw in list(table.items()):
        if not isinstance(key, str) or not key.startswith(prefix) or not raw:
            continue
        ts, rows = orjson.loads(raw)
        owner.batches[int(key.removeprefix(prefix))] = (float(ts), batch_from_rows(rows))
