"""The portfolio table of a drained generation re-keyed for the next one (no Kafka here).

What each key of the table becomes:
- an account's record goes to its partition in the new layout, with the offsets of the input
  topics it applied (the upstream ones: generation 0 applied them directly, a later one marked
  them from its routed inputs' origin) and without the offsets of the old generation's internal
  topics, which the new one does not read; its outbox is emptied, its outputs handed back to be
  sent again (same ids, same bytes: consumers drop the copies they have);
- a partition's market state: every partition of a drained generation applied its whole market
  broadcast, so new partition q takes old partition ``q mod N_old``'s, with no broadcast offset
  applied yet (the new broadcast topic starts at 0) and its outbox emptied likewise;
- a partition's cursor and solvency-proof leaves stay behind: they speak of the old partitions'
  offsets and epochs, and the old changelog keeps them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from infra.settings import Settings
from streams.accounts.outbox import Encoded
from streams.accounts.portfolio import PortfolioRecord
from streams.market.table import LIVE_KEY, PART_KEYS
from streams.scaling.layout import account_partition

MARKET_KEYS = (LIVE_KEY, *PART_KEYS.values())
"""A partition's market state keys (formats of the partition number)."""


@dataclass
class Rekeyed:
    """The new generation's table writes (partition, key, value) and the outputs to send again."""

    writes: list[tuple[int, str, bytes]] = field(default_factory=list)
    resend: list[Encoded] = field(default_factory=list)
    accounts: int = 0
    dropped: int = 0  # keys left behind (cursors, proof leaves)


def market_key(key: str, partitions: int) -> tuple[str, int] | None:
    """(format, partition) of a market state key of the old layout, else None."""
    for fmt in MARKET_KEYS:
        head = fmt.split("{")[0]
        tail = key.removeprefix(head)
        if key.startswith(head) and tail.isdigit() and int(tail) < partitions:
            return fmt, int(tail)
    return None


def unpack(outbox: Iterable[list[Any]]) -> list[Encoded]:
    """The outputs of outbox entries ([topic, partition, offset, [[topic, key, b64], ...]])."""
    found = []
    for _t, _p, _o, packed in outbox:
        found += [Encoded(t, k, base64.b64decode(v)) for t, k, v in packed]
    return found


def upstream_offsets(settings: Settings, offsets: Mapping[str, int]) -> dict[str, int]:
    """The offsets of input topics themselves (no generation's internal copy)."""
    prefix = settings.topic_prefix
    return {t: o for t, o in offsets.items() if settings.logical_topic(t) == t.removeprefix(prefix)}


def carry_record(settings: Settings, record: PortfolioRecord, out: Rekeyed) -> None:
    """A record (and its sub-accounts) made ready for the new layout, its outbox handed over."""
    out.resend += unpack(record.outbox)
    record.outbox = []
    record.offsets = upstream_offsets(settings, record.offsets)
    for sub in record.subs.values():
        carry_record(settings, sub, out)


def rekey(table: Mapping[str, bytes], old: Settings, new: Settings) -> Rekeyed:
    """The old generation's table (latest value per key) laid out for the new one."""
    out = Rekeyed()
    markets: dict[int, dict[str, bytes]] = {}
    for key, value in sorted(table.items()):
        found = market_key(key, old.layout_partitions)
        if found is not None:
            markets.setdefault(found[1], {})[found[0]] = value
        elif key.startswith("\x00"):
            out.dropped += 1
        else:
            record = PortfolioRecord.from_json(value)
            record.partition = account_partition(key.encode(), new.layout_partitions)
            carry_record(old, record, out)
            out.writes.append((record.partition, key, record.to_json()))
            out.accounts += 1
    lay_markets(markets, old.layout_partitions, new.layout_partitions, out)
    return out


def lay_markets(
    markets: Mapping[int, Mapping[str, bytes]], old_n: int, new_n: int, out: Rekeyed
) -> None:
    """Each new partition's market state from an old one's, outboxes handed over once."""
    for partition in sorted(markets):
        live = markets[partition].get(LIVE_KEY)
        if live is not None:
            out.resend += unpack(orjson.loads(live).get("outbox", []))
    for q in range(new_n):
        source = markets.get(q % old_n)
        if not source:
            continue
        for fmt, value in source.items():
            if fmt == LIVE_KEY:
                data = orjson.loads(value) | {"applied": -1, "outbox": []}
                value = orjson.dumps(data)
            out.writes.append((q, fmt.format(partition=q), value))
