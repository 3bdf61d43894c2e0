"""Where a routed input came from: the upstream topic, partition and offset a router forwarded,
carried in a header of the internal copy.

Why. The router is at-least-once: after a crash or a rebalance it forwards again the records
after its last commit, so an internal topic can hold an input twice at two offsets. An account's
inputs all sit in one upstream partition, in order, so the account's portfolio record keeps the
last upstream offset applied per upstream topic (its ``offsets``, under the upstream topic's
name, as generation 0 keeps it) and a routed copy at or below it is a copy, skipped. The same
record, carried over by the migration, makes a generation skip what the one before applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

HEADER = "spma-origin"
"""The header of a routed input: JSON [upstream topic, partition, offset]."""


@dataclass(frozen=True)
class Origin:
    """An upstream record's coordinates."""

    topic: str
    partition: int
    offset: int

    def header(self) -> tuple[str, bytes]:
        """The header carrying it."""
        return HEADER, orjson.dumps([self.topic, self.partition, self.offset])


def origin_of(headers: Any) -> Origin | None:
    """The origin a record's headers carry (None: not a routed record). Faust gives headers as a
    list of pairs or as a mapping."""
    if not headers:
        return None
    pairs: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        key = name.decode() if isinstance(name, bytes) else name
        if key == HEADER and value:
            topic, partition, offset = orjson.loads(value)
            return Origin(str(topic), int(partition), int(offset))
    return None


def already_routed(offsets: Mapping[str, int], origin: Origin) -> bool:
    """True when an account's record applied this upstream offset (or a later one) already."""
    return origin.offset <= offsets.get(origin.topic, -1)
