"""A generation's account layout: where an account's inputs go and which topics it owns.

An account's partition in a generation is librdkafka's default for its key (CRC32 modulo the
partition count), the partitioner the exchange's producers and the project's own tools use: with
it, generation 0 (the input topics themselves) and every later generation place an account alike
whenever the counts agree. A generation g >= 1 owns internal copies of the account inputs
(``{prefix}g{g}.fills``, ``.collateral``, ``.market-broadcast``) and its portfolio changelog, all
of N_g partitions; the market and fund agents' tables keep their topics across generations.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from infra.settings import Settings
from streams.topics.catalog import ACCOUNT_INPUTS, ACCOUNT_KEYED, Topic


def account_partition(key: bytes | None, partitions: int) -> int:
    """The partition of an account's key among ``partitions``."""
    return zlib.crc32(key or b"") % partitions


@dataclass(frozen=True)
class OwnTopic:
    """A topic a generation owns: its full name, partition count and whether it is compacted."""

    name: str
    partitions: int
    compacted: bool


def owned_topics(settings: Settings) -> list[OwnTopic]:
    """The topics of the generation the settings run (generation 0 owns its changelog only; its
    account inputs are the input topics themselves)."""
    n = settings.layout_partitions
    found = [OwnTopic(settings.portfolios_changelog(), n, True)]
    if settings.generation:
        found += [OwnTopic(settings.account_topic(t), n, False) for t in ACCOUNT_INPUTS]
    return found


def routed_inputs() -> tuple[str, ...]:
    """The keyed input topics a router re-keys (fills, collateral), logical names."""
    return tuple(t for t in ACCOUNT_INPUTS if t in ACCOUNT_KEYED)


def drained_inputs(settings: Settings) -> list[str]:
    """The account agent's inputs of a generation that a drain must read to their end (full
    names): its internal topics; generation 0's own input topics stop wherever they are, only
    its market broadcast is read to its end."""
    if settings.generation == 0:
        return [settings.account_topic(Topic.MARKET_BROADCAST)]
    return [settings.account_topic(t) for t in ACCOUNT_INPUTS]
