"""What an account partition hands back: outputs to send, where an input came from, and an input
applied whose status is still to come."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.accounts.portfolio import PortfolioRecord
from streams.records import Record


@dataclass(frozen=True)
class Output:
    """A record to send: logical topic, key and value; ``owner`` the master whose record changed
    when it is not the key (an isolated sub-account's status is keyed ``master/sub``)."""

    topic: str
    key: str
    record: Record
    owner: str = ""


@dataclass(frozen=True)
class InputRef:
    """Where an input came from (for idempotence and deterministic output ids)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Applied:
    """A fill or transfer applied to its account, its status not yet computed: a batch settles
    many accounts' statuses in one margin pass (``AccountProcessor.settle``)."""

    record: PortfolioRecord
    reason: str
    ref: InputRef
    ts: datetime
    outputs: list[Output] = field(default_factory=list)  # what comes before the status
    says_status: bool = True  # False: held (streams/accounts/holding.py), nothing to say yet
