"""Margin-status and margin-call records from the engine's report, with deterministic ids.

An output's id is derived from the input that caused it (topic, partition, offset) and the
account, so replaying the same input gives the same id and consumers can drop duplicates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.margin import MarginReport
from engine.states import STATES
from streams.ids import deterministic_id
from streams.records import MarginCall, MarginStatus, UnderlyingComponent

COMPONENT_FIELDS = tuple(f for f in UnderlyingComponent.model_fields if f != "underlying")


def output_id(kind: str, topic: str, partition: int, offset: int, account: str, n: int = 0) -> str:
    """Deterministic id of an output: kind, the input's coordinates, the account, a counter."""
    return deterministic_id(kind, topic, partition, offset, account, n)


def status_record(
    report: MarginReport,
    i: int,
    *,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    ts: datetime,
    stale: list[str] | None = None,
) -> MarginStatus:
    """The margin-status record of row i of a report."""
    account = report.accounts[i]
    view = report.account(i)
    return MarginStatus(
        status_id=output_id("status", topic, partition, offset, account),
        account=account,
        state=STATES[int(report.state[i])],
        equity=view.equity,
        equity_mm=view.equity_mm,
        equity_im=view.equity_im,
        im=max(view.im, 0.0),
        mm=max(view.mm, 0.0),
        ratio_mm=view.ratio_mm,
        components=[
            UnderlyingComponent(underlying=u, **{k: c[k] for k in COMPONENT_FIELDS})
            for u, c in view.underlyings.items()
        ],
        directional_total=view.directional_total,
        scenario_requirement=view.scenario_requirement,
        es99=view.es99,
        var99=view.var99,
        liquidity_addon=view.liquidity_addon,
        haircuts={a: h["haircut"] for a, h in view.haircuts.items()},
        params_version=report.params_version,
        stale_underlyings=sorted(stale or []),
        reason=reason,
        input_topic=topic,
        input_partition=partition,
        input_offset=offset,
        ts=ts,
    )


def call_record(status: MarginStatus, sequence: int, ts: datetime, grace_s: float) -> MarginCall:
    """A margin call for a status in MARGIN_CALL: amount IM - E_im, due after the grace."""
    return MarginCall(
        call_id=output_id(
            "call",
            status.input_topic,
            status.input_partition,
            status.input_offset,
            status.account,
            sequence,
        ),
        account=status.account,
        amount=max(status.im - status.equity_im, 1e-9),
        equity_im=status.equity_im,
        im=status.im,
        deadline=ts + timedelta(seconds=grace_s),
        sequence=sequence,
        ts=ts,
    )
