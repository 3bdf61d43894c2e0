"""What one worker tells the risk console about its own share of the deployment, as JSON-ready
data: its accounts by state (now and sampled over time), the accounts of its partitions closest to
liquidation and those in deficit, the insurance fund when it owns it (balance, totals, recent
events and ADL orders), its output and dlq counts, and the marks its market agent holds with
their STALE flags.

Only this worker's state is read: the console's view of the whole deployment is the merge of
every worker's snapshot (streams/agents/console_merge.py). Nothing here changes state.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

from engine.margin import MarginReport
from streams.accounts.processor import AccountProcessor
from streams.accounts.subaccounts import rows_of
from streams.agents.console_history import StateHistory
from streams.agents.metrics import count_states
from streams.agents.web import fund_balance, owned_partitions
from streams.agents.worker import Worker

CLOSEST = 15
"""Accounts listed as closest to liquidation (the lowest MM ratios)."""
DEFICITS = 50
"""Accounts in deficit listed (the largest deficits)."""
WATCHED = frozenset({"HEALTHY", "MARGIN_CALL", "LIQUIDATION"})
"""States whose accounts may be closest to liquidation (BANKRUPT ones are in deficit)."""


def local_snapshot(worker: Worker, history: StateHistory) -> dict[str, Any]:
    """This worker's part of the console, from its state only."""
    processors = [
        proc
        for partition, proc in sorted(worker.partitions.processors.items())
        if partition in owned_partitions(worker)
    ]
    return {
        "worker": str(worker.app.conf.canonical_url),
        "partitions": sorted(owned_partitions(worker)),
        "rebalancing": bool(worker.app.rebalancing),
        "event_time": max((p.market.as_of for p in processors), default=0.0) or None,
        "states": count_states(processors),
        "history": history.points(),
        "closest": closest(processors, CLOSEST),
        "deficits": deficits(processors, DEFICITS),
        "fund": fund(worker),
        "outputs": counter_values(worker.metrics.outputs, "topic"),
        "dlq": counter_values(worker.metrics.dlq, "reason"),
        "marks": marks(worker),
    }


def closest(processors: Iterable[AccountProcessor], n: int) -> list[dict[str, Any]]:
    """The n accounts (masters and isolated sub-accounts) with the lowest MM ratio at their last
    status, not bankrupt, with their margin now."""
    ranked = heapq.nsmallest(
        n,
        (
            (row.record.last_ratio, account, proc)
            for proc in processors
            for account, row in rows_of(proc.records.values()).items()
            if row.record.state in WATCHED and _finite(row.record.last_ratio)
        ),
        key=lambda item: (item[0], item[1]),
    )
    return _margins([(proc, account) for _, account, proc in ranked])


def deficits(processors: Iterable[AccountProcessor], n: int) -> list[dict[str, Any]]:
    """The n largest deficits (negative equity) among BANKRUPT accounts, with their margin now."""
    bankrupt = [
        (proc, account)
        for proc in processors
        for account, row in rows_of(proc.records.values()).items()
        if row.record.state == "BANKRUPT"
    ]
    rows = [row for row in _margins(bankrupt) if row["equity"] < 0]
    return sorted(rows, key=lambda row: (row["equity"], row["account"]))[:n]


def _margins(accounts: list[tuple[AccountProcessor, str]]) -> list[dict[str, Any]]:
    """Each account's margin now from its partition's book (one pass a partition); accounts the
    book cannot price yet are left out."""
    by_proc: dict[int, tuple[AccountProcessor, list[str]]] = {}
    for proc, account in accounts:
        if account in proc.book and account not in proc.unpriced:
            by_proc.setdefault(proc.partition, (proc, []))[1].append(account)
    rows = []
    for proc, names in by_proc.values():
        report = proc.book.margin(names)
        states = [state.value for state in report.states()]
        rows += [_row(report, i, states[i], proc.partition) for i in range(len(report))]
    order = {account: k for k, (_, account) in enumerate(accounts)}
    return sorted(rows, key=lambda row: order[row["account"]])


def _row(report: MarginReport, i: int, state: str, partition: int) -> dict[str, Any]:
    """One account's line in the console's tables."""
    mm = float(report.mm[i])
    return {
        "account": report.accounts[i],
        "state": state,
        "equity": float(report.equity[i]),
        "equity_mm": float(report.equity_mm[i]),
        "im": float(report.im[i]),
        "mm": mm,
        "ratio_mm": float(report.ratio_mm[i]) if mm > 0 else None,
        "deficit": max(-float(report.equity[i]), 0.0),
        "partition": partition,
    }


def fund(worker: Worker) -> dict[str, Any] | None:
    """The insurance fund, when this worker owns it: balance, reconciliation totals (while its
    owner is live here) and the newest events and ADL orders."""
    balance = fund_balance(worker)
    if balance is None:
        return None
    currency, amount = balance
    owner, journal = worker.fund.owner, worker.fund.journal
    totals = None
    if owner is not None:
        totals = {
            "fees": owner.fees_cents / 100.0,
            "deficits": owner.deficits_cents / 100.0,
            "payouts": owner.payouts_cents / 100.0,
            "adl": owner.adl_cents / 100.0,
            "uncovered": owner.uncovered_cents / 100.0,
            "pending": len(owner.pending),
        }
    return {
        "currency": currency,
        "balance": amount,
        "totals": totals,
        "events": list(journal.events),
        "adl": list(journal.adl),
    }


def counter_values(counter: Counter, label: str) -> dict[str, float]:
    """A labelled counter's totals by one label (prometheus-client keeps them as samples)."""
    values: dict[str, float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                key = sample.labels.get(label, "")
                values[key] = values.get(key, 0.0) + sample.value
    return values


def marks(worker: Worker) -> dict[str, dict[str, Any]]:
    """The marks this worker's market agent holds, each with its STALE flag and the market's
    event time."""
    market = worker.market
    return {
        name: {"mark": float(mark), "stale": name in market.stale, "as_of": market.as_of}
        for name, mark in sorted(market.marks.items())
    }


def _finite(value: float | None) -> bool:
    """True for a number that is neither None, NaN nor infinite."""
    return value is not None and math.isfinite(value)
