"""Acceptance: kill -9 sends no liquidation order, claim or ADL order the run without the kill does
not send, and leaves every account's figures as they would be without the fault.

The requirement: "kill -9 runs (at least 3 kills in a stream, including one right after the
worker starts emitting) send no liquidation order, claim or ADL order that the run without the
kill does not send, on Tansu and on Apache Kafka. kill -9 and takeover runs end with every
account's figures (equity, IM, MM, ES, state) equal to a run without the fault, to 1e-9, and every
output id carrying one content only."

Two live runs of the same inputs (same records, same event times; tests/faults/orders_scenario.py
says which and why they make liquidation orders, claims and ADL orders deterministically), each on
a fresh topic prefix with one worker process:

- run A, no fault;
- run B, the worker killed with SIGKILL three times, and another started each time: right after
  it starts emitting (the first margin-status of the deposits), in the middle of the fills, and
  when the crash's first liquidation order or claim is out (orders and claims flowing).

Each phase is waited for before the next (the market broadcast to every partition, every
deposit in the table, every fill's status, every partition's ADL candidates, then the crash's
orders, claims and ADL orders), so that both runs apply each partition's inputs in the same
order. Nobody fills an order (no feedback loop), so the runs' outputs can be compared.

Output ids are deterministic but name the input topic, prefix included (streams/ids.py,
streams/accounts/status.py ``output_id``), so ids of two runs differ by construction. Each
output id is therefore mapped back to its cause: the kind, the input topic without the prefix,
partition, offset, account and sequence for orders and claims (the claim's for ADL orders and
fund events). Run B's outputs must be a subset of run A's by (cause -> content); within run B
every output id must carry one content (the same raw bytes every time it is sent).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from streams import records as r
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.status import output_id
from streams.fund.owner import fund_event_id
from streams.ids import deterministic_id
from tests.faults import orders_scenario as osc
from tests.faults import scenario
from tests.faults.chaos import Chaos, chaos
from tests.streams.worker_harness import Collector

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.tansu_lane]

PARTITIONS = 8
OUTPUTS = (
    "margin-status",
    "liquidations",
    "insurance-claims",
    "adl",
    "insurance-fund",
    "market-broadcast",
    "dlq",
)
ORDERS = ("liquidations", "insurance-claims", "adl", "insurance-fund")
FIGURES = ("equity", "equity_mm", "equity_im", "im", "mm", "es99")
ID_FIELD = {
    "margin-status": "status_id",
    "liquidations": "order_id",
    "insurance-claims": "claim_id",
    "adl": "adl_id",
    "insurance-fund": "event_id",
}


@dataclass
class Run:
    """What one live run left: every output record (raw), the decoded ones, the table."""

    name: str
    prefix: str
    raw: dict[str, list[tuple[bytes | None, bytes | None]]]
    decoded: dict[str, list[Any]]
    table: dict[str, PortfolioRecord]
    seconds: float
    broadcasts: set[tuple[str, int, int]]
    broadcast_log: list[str]
    kills: list[str] = field(default_factory=list)

    def claims(self) -> list[r.InsuranceClaim]:
        """The insurance claims (the claims topic also carries candidates and fees)."""
        return [c for c in self.decoded["insurance-claims"] if isinstance(c, r.InsuranceClaim)]

    def last_statuses(self) -> dict[str, r.MarginStatus]:
        """Each account's last margin-status (the topic is keyed by account: offset order), as
        a consumer that drops a copy by its id sees it."""
        return _last_statuses(self.decoded["margin-status"])


def _last_statuses(statuses: list[Any]) -> dict[str, Any]:
    """Each account's last status, copies left out: a status sent again after a kill (a
    replayed input's stored outputs, same id and bytes) may come after a newer one, and says
    nothing new."""
    seen: set[str] = set()
    last: dict[str, Any] = {}
    for s in statuses:
        if s.status_id not in seen:
            seen.add(s.status_id)
            last[s.account] = s
    return last


# ----- the scenario, phase by phase ---------------------------------------------------------


def _statuses(out: Collector) -> int:
    return len(out.records["margin-status"])


def _decoded(c: Chaos, out: Collector, topic: str) -> list[Any]:
    return out.decoded(topic)


def _wait(
    c: Chaos, out: Collector, condition: Callable[[], str | None], timeout_s: float, what: str
) -> None:
    """Poll until ``condition`` returns None (it returns what is still missing otherwise)."""
    deadline = time.monotonic() + timeout_s
    missing: str | None = "never checked"
    while time.monotonic() < deadline:
        out.poll(0.5)
        missing = condition()
        if missing is None:
            return
    raise AssertionError(
        f"timed out after {timeout_s:g} s waiting for {what}; still missing: {missing}\n"
        f"{c.log_tail()}"
    )


def _restart(c: Chaos, kills: list[str], what: str) -> Any:
    kills.append(what)
    return c.start(loglevel="info")


def _live_run(bootstrap: str, log_dir: Path, name: str, t0: datetime, kill: bool) -> Run:
    """One live run of the scenario; with ``kill``, three SIGKILLs and restarts."""
    log_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    kills: list[str] = []
    with chaos(bootstrap, log_dir, PARTITIONS) as c:
        plan = osc.plan(t0, PARTITIONS)
        out = c.collect(OUTPUTS)
        worker = c.start(loglevel="info")

        # the market, broadcast to every partition
        c.produce(osc.market(c, t0))
        c.wait_count(out, "market-broadcast", 3 * PARTITIONS, timeout_s=120)

        # the deposits; kill 1 as soon as the worker emits its first status
        c.produce(osc.deposits(c, plan, t0))
        if kill:
            c.kill_when(worker, out, lambda x: _statuses(x) > 0, 120, "the first margin-status")
            worker = _restart(c, kills, "at the first margin-status (deposits)")

        def funded(table: dict[str, PortfolioRecord]) -> bool:
            return all(
                a in table and table[a].collateral.get("USDC") == amount
                for a, amount in plan.deposits.items()
            )

        c.wait_table(funded, timeout_s=150, what="every deposit in the table")

        # the fills; kill 2 at 40 % of their statuses
        before = _statuses(out)
        fills = c.produce(osc.fills(c, plan))
        if kill:
            n = before + len(fills) * 2 // 5
            c.kill_when(
                worker, out, lambda x: _statuses(x) >= n, 150, "40 % of the fills' statuses"
            )
            worker = _restart(c, kills, "at 40 % of the fills")
        c.wait_statuses(out, fills, timeout_s=180)

        # the pre-crash tick: every partition publishes its ADL candidates
        c.produce(osc.pre_crash(c, t0))

        def candidates() -> str | None:
            parts = {
                x.partition
                for x in _decoded(c, out, "insurance-claims")
                if isinstance(x, r.AdlCandidate)
            }
            lacking = sorted(set(range(PARTITIONS)) - parts)
            return f"candidates of partitions {lacking}" if lacking else None

        _wait(c, out, candidates, 120, "every partition's ADL candidates")
        out.settle(quiet_s=3.0, timeout_s=60)

        # the crash; kill 3 at its first liquidation order or claim
        c.produce(osc.crash(c, t0))
        if kill:
            c.kill_when(
                worker,
                out,
                lambda x: (
                    bool(x.records["liquidations"])
                    or any(
                        isinstance(v, r.InsuranceClaim) for v in _decoded(c, x, "insurance-claims")
                    )
                ),
                150,
                "the crash's first liquidation order or claim",
            )
            worker = _restart(c, kills, "at the crash's first liquidation order or claim")
        _wait(c, out, _crash_done(c, out, plan), 180, "the crash's orders, claims and ADL orders")
        out.settle(quiet_s=5.0, timeout_s=90)
        assert c.alive(), f"the last worker died\n{c.log_tail()}"
        table = c.table()
        raw = {
            t: [
                (m.key, m.value)
                for m in sorted(out.records[t], key=lambda m: (m.partition, m.offset))
            ]
            for t in OUTPUTS
        }
        decoded = {t: _decoded(c, out, t) for t in OUTPUTS}
        prefix = c.settings.topic_prefix
        broadcasts = {(m.topic, m.partition, m.offset) for m in out.records["market-broadcast"]}
        log = _broadcast_log(c, out, 0)
    return Run(name, prefix, raw, decoded, table, time.monotonic() - began, broadcasts, log, kills)


def _broadcast_log(c: Chaos, out: Collector, partition: int) -> list[str]:
    """The market updates one account partition received, by offset (for a failure's message:
    a market update sent again after a kill moves the offsets, which output ids name)."""
    log = []
    prefix = c.settings.topic_prefix
    for m in sorted(out.records["market-broadcast"], key=lambda m: m.offset):
        if m.partition != partition:
            continue
        u = c.codec.decode("market-broadcast", m.value)
        assert isinstance(u, r.MarketUpdate)
        log.append(
            f"{m.offset}: {u.kind.value} {u.underlying} mark={u.mark} stale={u.stale} "
            f"seq={u.seq} ts={u.ts:%H:%M:%S.%f} id={u.update_id.replace(prefix, '')}"
        )
    return log


def _crash_done(c: Chaos, out: Collector, plan: osc.Plan) -> Callable[[], str | None]:
    """What the crash must have produced: orders for every liq-* account, a claim for every
    bk-* account and ADL orders closing each bk-* position, every one of them in its state."""
    qty = {f.account: f.qty for f in plan.fills if f.account.startswith("bk-")}

    def missing() -> str | None:
        ordered = {o.account for o in _decoded(c, out, "liquidations")}
        claimed = {
            x.account
            for x in _decoded(c, out, "insurance-claims")
            if isinstance(x, r.InsuranceClaim)
        }
        closed: Counter[str] = Counter()
        for o in _decoded(c, out, "adl"):
            closed[o.counterparty_account] += o.qty
        last = {
            a: s.state.value for a, s in _last_statuses(_decoded(c, out, "margin-status")).items()
        }
        lacking = {
            "orders": sorted(set(plan.names("liq-")) - ordered),
            "claims": sorted(set(plan.names("bk-")) - claimed),
            "adl": sorted(a for a, q in qty.items() if closed[a] < q - 1e-9),
            "liquidation state": [a for a in plan.names("liq-") if last.get(a) != "LIQUIDATION"],
            "bankrupt state": [a for a in plan.names("bk-") if last.get(a) != "BANKRUPT"],
        }
        lacking = {k: v for k, v in lacking.items() if v}
        if not lacking:
            return None
        odd = sorted({a for v in lacking.values() for a in v})[:2]
        prefix = c.settings.topic_prefix
        history = [
            (
                s.account,
                s.state.value,
                s.reason,
                f"{s.input_topic.removeprefix(prefix)}:{s.input_partition}:{s.input_offset}",
                s.stale_underlyings,
                round(s.equity, 2),
                round(s.mm, 2),
            )
            for s in _decoded(c, out, "margin-status")
            if s.account in odd
        ]
        return f"{lacking}; status history of {odd}: {history[-12:]}"

    return missing


# ----- the comparison -----------------------------------------------------------------------


class Causes:
    """Maps a run's output ids back to their cause, free of the run's topic prefix."""

    def __init__(self, run: Run) -> None:
        self.prefix = run.prefix
        self.ids: dict[str, str] = {}
        inputs: dict[str, set[tuple[str, int, int]]] = defaultdict(set)
        for s in run.decoded["margin-status"]:
            inputs[s.account].add((s.input_topic, s.input_partition, s.input_offset))
        broadcast = run.broadcasts
        for o in run.decoded["liquidations"]:
            if o.reason == "MM_BREACH":
                self._caused("liq", o.account, inputs[o.account] | broadcast, [o.sequence])
        for c in run.claims():
            self._caused("claim", c.account, inputs[c.account] | broadcast, range(1, 6))
        for c in run.claims():
            cause = self.ids.get(c.claim_id, f"unmapped {c.claim_id}")
            for kind in ("PAYOUT", "SHORTFALL"):
                self.ids[fund_event_id(kind, c.claim_id)] = f"fund {kind} of {cause}"
            for p in {x.instrument for x in c.positions} | {osc.PERP}:
                for n in range(0, 64):
                    self.ids[deterministic_id("adl", c.claim_id, p, n)] = f"adl {p} {n} of {cause}"
                    self.ids[deterministic_id("takeover", c.claim_id, p, n)] = (
                        f"takeover {p} {n} of {cause}"
                    )

    def _caused(self, kind: str, account: str, refs: set[tuple[str, int, int]], ns: Any) -> None:
        for topic, partition, offset in refs:
            for n in ns:
                oid = output_id(kind, topic, partition, offset, account, n)
                if oid not in self.ids:
                    plain = topic.removeprefix(self.prefix)
                    self.ids[oid] = f"{kind} {plain}:{partition}:{offset} {account} #{n}"

    def of(self, oid: str) -> str:
        """The cause of an output id, or a mark that it has none the run explains."""
        return self.ids.get(oid, f"UNMAPPED {oid}")


def _canonical(run: Run, causes: Causes, topic: str) -> dict[str, set[str]]:
    """Cause -> the contents (JSON, ids replaced by causes) of one topic's outputs in a run."""
    found: dict[str, set[str]] = defaultdict(set)
    for record in run.decoded[topic]:
        if topic == "insurance-claims" and not isinstance(record, r.InsuranceClaim):
            continue
        data = record.model_dump(mode="json")
        key = causes.of(data[ID_FIELD[topic]])
        data[ID_FIELD[topic]] = key
        if "claim_id" in data and topic != "insurance-claims":
            data["claim_id"] = causes.of(data["claim_id"])
        found[key].add(json.dumps(data, sort_keys=True))
    return found


def _one_content_per_id(run: Run) -> list[str]:
    """Ids sent with more than one content (raw bytes) in a run, with the fields that differ."""
    bad = []
    for topic, id_field in ID_FIELD.items():
        seen: dict[str, dict[bytes | None, Any]] = defaultdict(dict)
        for (_, value), record in zip(run.raw[topic], run.decoded[topic], strict=True):
            oid = getattr(record, id_field, None)
            if oid is not None:
                seen[oid].setdefault(value, record)
        for oid, versions in seen.items():
            if len(versions) > 1:
                dumps = [v.model_dump(mode="json") for v in versions.values()]
                fields = {
                    k: _relative([d.get(k) for d in dumps])
                    for k in sorted(set().union(*dumps))
                    if len({json.dumps(d.get(k), sort_keys=True) for d in dumps}) > 1
                }
                who = dumps[0].get("account")
                bad.append(f"{topic} {oid} ({who}): {len(versions)} contents, differing {fields}")
    return bad


def _without_ids(contents: set[str]) -> set[str]:
    """Contents with the id fields dropped (to tell a new cause from new content)."""
    out = set()
    for text in contents:
        data = json.loads(text)
        for f in (*ID_FIELD.values(), "claim_id"):
            data.pop(f, None)
        out.add(json.dumps(data, sort_keys=True))
    return out


def _not_in_baseline(a: Run, b: Run) -> list[str]:
    """B's orders, claims, ADL orders and fund events whose cause or content A does not have."""
    ca, cb = Causes(a), Causes(b)
    problems = []
    for topic in ORDERS:
        want, got = _canonical(a, ca, topic), _canonical(b, cb, topic)
        for key, contents in sorted(got.items()):
            extra = contents - want.get(key, set())
            if not extra:
                continue
            loose = _without_ids(extra) - _without_ids({x for v in want.values() for x in v})
            problems.append(
                f"{topic}: {key}: {sorted(extra)[:2]} (A has {sorted(want.get(key, set()))[:2]}; "
                f"{'content unknown to A even without ids' if loose else 'A has it, other cause'})"
            )
    return problems


def _book(rec: PortfolioRecord) -> dict[str, object]:
    return {
        "positions": {n: (p.qty, p.entry, p.realised) for n, p in rec.positions.items()},
        "collateral": rec.collateral,
        "state": rec.state,
    }


def _figures_differ(a: Run, b: Run) -> list[str]:
    """Accounts whose last status differs (figures to 1e-9, state, or only in one run)."""
    la, lb = a.last_statuses(), b.last_statuses()
    diffs = []
    for account in sorted(set(la) | set(lb)):
        if account not in la or account not in lb:
            diffs.append(f"{account}: status only in {'A' if account in la else 'B'}")
            continue
        sa, sb = la[account], lb[account]
        if sa.state != sb.state:
            diffs.append(f"{account}: state {sa.state.value} in A, {sb.state.value} in B")
        for f in FIGURES:
            va, vb = getattr(sa, f), getattr(sb, f)
            if vb != pytest.approx(va, rel=1e-9, abs=1e-9):
                diffs.append(f"{account}: {f} {va!r} in A, {vb!r} in B")
    return diffs


def _summary(run: Run) -> str:
    states = Counter(s.state.value for s in run.last_statuses().values())
    cands = sum(1 for x in run.decoded["insurance-claims"] if isinstance(x, r.AdlCandidate))
    dup = {
        t: len(run.raw[t]) - len({getattr(x, f) for x in run.decoded[t] if hasattr(x, f)})
        for t, f in ID_FIELD.items()
        if t != "insurance-claims"
    }
    return (
        f"run {run.name}: {run.seconds:.0f} s, kills {run.kills}; {len(run.raw['margin-status'])} "
        f"statuses, {len(run.raw['liquidations'])} liquidation orders, {len(run.claims())} "
        f"claims, {cands} candidates, {len(run.raw['adl'])} ADL orders, "
        f"{len(run.raw['insurance-fund'])} fund events; states {dict(states)}; "
        f"resent duplicates by topic {dup}"
    )


def _relative(values: list[Any]) -> str:
    """How far apart two versions of a float field are (relative), for a failure's message."""
    if all(isinstance(v, float) for v in values) and len(values) == 2:
        a, b = values
        return f"{values} (relative {abs(a - b) / max(abs(a), abs(b), 1e-300):.1e})"
    return str(values)


def test_kill_9_three_times_sends_nothing_the_run_without_the_kill_does_not(
    kafka_bootstrap: str, broker_kind: str, tmp_path: Path
) -> None:
    t0 = scenario.start_time()
    a = _live_run(kafka_bootstrap, tmp_path / "a", "A", t0, kill=False)
    print(f"\n[{broker_kind}] {_summary(a)}")
    b = _live_run(kafka_bootstrap, tmp_path / "b", "B", t0, kill=True)
    print(f"[{broker_kind}] {_summary(b)}")

    # the baseline does what the scenario is for
    plan = osc.plan(t0, PARTITIONS)
    assert {o.account for o in a.decoded["liquidations"]} == set(plan.names("liq-")), _summary(a)
    assert {c.account for c in a.claims()} == set(plan.names("bk-")), _summary(a)
    assert a.decoded["adl"], _summary(a)
    assert not _one_content_per_id(a), ("run A", _one_content_per_id(a)[:5])
    assert len(b.kills) >= 3, b.kills

    # every failure of run B at once, each section saying what was expected
    failures: dict[str, list[str]] = {
        "dlq records (expected none)": [
            f"{run.name}: {d.model_dump(mode='json')}" for run in (a, b) for d in run.decoded["dlq"]
        ],
        "ids of run B sent with more than one content (expected one each)": _one_content_per_id(b),
        "outputs of run B (killed) that run A does not send (expected none)": _not_in_baseline(
            a, b
        ),
        "last statuses of run B unlike run A's (expected equal to 1e-9)": _figures_differ(a, b),
        "accounts in one table only (expected the same accounts)": sorted(
            set(a.table) ^ set(b.table)
        ),
        "portfolio records unlike (expected equal positions, collateral, state)": [
            f"{acct}: A {_book(a.table[acct])} B {_book(b.table[acct])}"
            for acct in sorted(set(a.table) & set(b.table))
            if _book(a.table[acct]) != _book(b.table[acct])
        ],
    }
    failed = {k: v for k, v in failures.items() if v}
    if failed and a.broadcast_log != b.broadcast_log:
        failed["(context) market broadcasts of partition 0 in A"] = a.broadcast_log
        failed["(context) market broadcasts of partition 0 in B"] = b.broadcast_log
    assert not failed, "\n".join(
        f"{k}: {len(v)}\n  " + "\n  ".join(v[:12]) for k, v in failed.items()
    )
