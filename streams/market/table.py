"""A partition's market state in the portfolio table, in parts that change at different rates.

Every market update changes the live part (marks, staleness, EWMA, depth, PSR, as well as the
offset applied and the partition's outbox that go with it); parameters and the instrument list
change rarely, vol surfaces every few seconds at most. Writing the whole state on every tick
re-serialised it all per partition per tick (14 KB and 130 us with the demo's 60 instruments,
over 100 KB with 2,000), so each part has its own key, written only when an update of its kind
came. A partition's first write after it was loaded writes every part (a table from before the
split keeps everything under the live key, which loading still reads). The parts of a partition
share its changelog partition: written before the live part, they are in the table whenever the
offset the live part says was applied is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.market.state import MARKET_FIELDS, MarketState, market_to_dict
from streams.records import MarketUpdateKind

LIVE_KEY = "\x00market/{partition}"
PART_KEYS = {
    "reference": "\x00market-reference/{partition}",
    "vols": "\x00market-vols/{partition}",
}
PART_FIELDS = {
    "reference": ("params", "param_versions", "instruments", "expired", "settled"),
    "vols": ("vols",),
}
LIVE_FIELDS = tuple(
    f for f in MARKET_FIELDS if not any(f in fields for fields in PART_FIELDS.values())
)
KIND_PARTS = {
    MarketUpdateKind.PARAMS: ("reference",),
    MarketUpdateKind.INSTRUMENT: ("reference",),
    MarketUpdateKind.VOL: ("vols",),
}


def load_market(table: Any, partition: int) -> dict[str, Any] | None:
    """A partition's market state as plain data (its parts merged), None when never written."""
    raw = table.get(LIVE_KEY.format(partition=partition))
    if not raw:
        return None
    data: dict[str, Any] = orjson.loads(raw)
    for key in PART_KEYS.values():
        part = table.get(key.format(partition=partition))
        if part:
            data.update(orjson.loads(part))
    return data


class MarketTable:
    """Writes partitions' market state to the table, each part only when it changed."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.whole: set[int] = set()  # partitions whose every part was written since loading

    def save(
        self,
        partition: int,
        state: MarketState,
        extra: dict[str, Any],
        kinds: Iterable[MarketUpdateKind] = (),
    ) -> None:
        """Write the live part (with `extra`: the offset applied, the outbox) and the parts
        the update kinds changed, those first."""
        parts = set(PART_KEYS) if partition not in self.whole else set()
        for kind in kinds:
            parts.update(KIND_PARTS.get(kind, ()))
        for part in sorted(parts):
            value = market_to_dict(state, PART_FIELDS[part])
            self.table[PART_KEYS[part].format(partition=partition)] = orjson.dumps(value)
        live = market_to_dict(state, LIVE_FIELDS) | extra
        self.table[LIVE_KEY.format(partition=partition)] = orjson.dumps(live)
        self.whole.add(partition)

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions assigned or revoked: their next write is whole again."""
        self.whole.difference_update(partitions)
