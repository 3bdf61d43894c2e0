"""Sub-accounts (margin-model.md section 11): routing inputs within a master's family, book rows,
standalone requirements and the status fields.

Fills and transfers are keyed by the master account, so one partition owns the whole family. A
named sub-account is either

- **cross-margined** (the default): its fills and transfers go into the master's record, the one
  book row (id = the master) that margins the family as one portfolio with shared collateral;
  they also go into the sub-account's own record, whose book row ``master/sub`` is a what-if
  that gives its *standalone* requirement (the IM of its positions and collateral alone) and is
  never a status of its own;
- **isolated**: declared by ``isolated = true`` on a fill or transfer (fill v3, collateral
  transfer v2). Its fills and transfers go into its own record only, its book row ``master/sub``
  is margined alone with its own collateral, and it has its own status (``account`` the master,
  ``sub_account`` the sub-account, keyed ``master/sub`` so that the compacted margin-status topic
  keeps the latest status of every margined row), state, calls and liquidation orders (keyed by
  the master). Its losses cannot draw on the master's collateral.

Isolation is declared with a sub-account's first inputs and is sticky (later inputs need not
repeat the flag). Fills and transfers come on two topics with no order between them, so the
declaring deposit can arrive after a fill of the sub-account: the fill was then applied to the
family, and when the declaration comes the sub-account's own contributions (its shadow record
holds exactly those) are taken out of the master's record (``portfolio.detach``) and it is
margined alone from then on: the family ends as if the inputs had arrived in event-time order.
A declaration stamped more than ``ISOLATION_GRACE_S`` after the sub-account's first input is not
such a race but a cross-margined sub-account trying to leave the family with what it holds (its
losses were carried by the shared collateral): it is rejected. The master's status lists every
sub-account's standalone requirement in ``sub_accounts`` (an isolated one's is its own IM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from engine.book import MarginBook
from engine.instruments import Instrument
from engine.margin import MarginReport
from streams.accounts.portfolio import PortfolioRecord, detach
from streams.errors import StreamError
from streams.records import MarginStatus

SEPARATOR = "/"
ISOLATION_GRACE_S = 60.0
"""Event time after a sub-account's first input within which a declaration of isolation still
takes its earlier inputs out of the family (far longer than a fill and a deposit of one account
can be apart across the two topics, far shorter than a trading position's life)."""


class SubAccountError(StreamError, ValueError):
    """An input that would change a sub-account's margin mode illegally."""


def row_id(master: str, sub: str) -> str:
    """The book row (and portfolio id) of a sub-account: ``master/sub``."""
    return f"{master}{SEPARATOR}{sub}"


def split_row(row: str) -> tuple[str, str | None]:
    """The master and sub-account of a book row id (``master/sub``; a master alone -> None)."""
    master, _, sub = row.partition(SEPARATOR)
    return master, (sub or None)


def master_of(row: str) -> str:
    """The master account of a row id: the key of everything that concerns it."""
    return split_row(row)[0]


@dataclass(frozen=True)
class Route:
    """Where an input goes: the record margined on it, a standalone shadow record if any, and
    whether the input's declaration just took a sub-account out of the family (the book must
    then be rebuilt)."""

    margined: PortfolioRecord
    shadow: PortfolioRecord | None
    detached: bool = False


def route(
    master: PortfolioRecord,
    sub: str | None,
    isolated: bool,
    ts: float,
    instrument: Callable[[str], Instrument],
    settlement: str,
) -> Route:
    """The records a fill or transfer of ``sub`` (None or "" = the master) stamped ``ts``
    applies to; a declaration of isolation that arrives after some of the sub-account's inputs
    (within the grace) detaches it from the family first."""
    if not sub:
        return Route(master, None)
    record = master.subs.get(sub)
    detached = False
    if record is None:
        record = PortfolioRecord(row_id(master.account, sub), partition=master.partition)
        record.isolated = isolated
        master.subs[sub] = record
    elif isolated and not record.isolated:
        if record.positions or record.collateral:
            if record.first_ts is None or ts > record.first_ts + ISOLATION_GRACE_S:
                raise SubAccountError(
                    f"sub-account {sub!r} of {master.account!r} is cross-margined with "
                    f"positions or collateral since more than {ISOLATION_GRACE_S:g} s before this "
                    "input; it cannot become isolated (isolation is declared with a "
                    "sub-account's first inputs)"
                )
            detach(master, record, instrument, settlement)
            detached = True
        record.isolated = True
    record.first_ts = ts if record.first_ts is None else min(record.first_ts, ts)
    if record.isolated:
        return Route(record, None, detached)
    return Route(master, record)


def margined(master: PortfolioRecord) -> list[PortfolioRecord]:
    """The family's records that are margined and get statuses: the master, isolated subs."""
    return [master, *(s for s in master.subs.values() if s.isolated)]


def every_row(master: PortfolioRecord) -> list[PortfolioRecord]:
    """Every record of the family with a book row: the master and all its sub-accounts."""
    return [master, *master.subs.values()]


@dataclass(frozen=True)
class Row:
    """A margined book row: its record, its master account and sub-account name (None: master)."""

    record: PortfolioRecord
    master: PortfolioRecord
    sub: str | None


def rows_of(records: Iterable[PortfolioRecord]) -> dict[str, Row]:
    """Book row id -> Row for the margined rows (masters and isolated subs) of some masters."""
    rows: dict[str, Row] = {}
    for master in records:
        rows[master.account] = Row(master, master, None)
        for name, sub in master.subs.items():
            if sub.isolated:
                rows[sub.account] = Row(sub, master, name)
    return rows


def all_records(records: Iterable[PortfolioRecord]) -> dict[str, PortfolioRecord]:
    """Book row id -> record for every row of some masters (standalone shadows included)."""
    return {r.account: r for master in records for r in every_row(master)}


def standalone_requirements(
    book: MarginBook, masters: Iterable[PortfolioRecord], known: MarginReport | None = None
) -> dict[str, dict[str, float]]:
    """Each master's sub-accounts' standalone IM, from their book rows in one vectorised pass.

    Rows already in ``known`` (a report of the whole book after a market move) are read from it;
    the others are computed together.
    """
    wanted = [
        (master.account, name, sub.account)
        for master in masters
        for name, sub in master.subs.items()
        if sub.account in book
    ]
    result: dict[str, dict[str, float]] = {}
    if not wanted:
        return result
    where = {a: i for i, a in enumerate(known.accounts)} if known is not None else {}
    missing = [row for _, _, row in wanted if row not in where]
    ims = (
        {row: float(known.im[where[row]]) for _, _, row in wanted if row in where}
        if known is not None
        else {}
    )
    if missing:
        extra = book.margin(missing)
        ims.update({a: float(extra.im[i]) for i, a in enumerate(missing)})
    for master, name, row in wanted:
        result.setdefault(master, {})[name] = max(ims[row], 0.0)
    return result


def decorate(
    status: MarginStatus,
    master: str,
    sub: str | None,
    standalone: Mapping[str, float] | None,
    psr: Mapping[str, float],
) -> MarginStatus:
    """A status with the family fields: master account, sub-account, standalone requirements."""
    update: dict[str, object] = {"account": master, "sub_account": sub, "psr": dict(psr)}
    if sub is None and standalone:
        update["sub_accounts"] = dict(standalone)
    return status.model_copy(update=update)
