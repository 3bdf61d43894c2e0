"""The demo report's pieces that need no broker: positions at a moment from the fills, and the
scenario's phases as the chart shades them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.records import Fill
from streams.tools.demo.observer import TimelinePoint
from streams.tools.demo.positions import FillLedger
from streams.tools.demo.report import phases

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(fill_id: str, side: str, qty: float, minutes: int, sub: str | None = None) -> Fill:
    return Fill(
        fill_id=fill_id,
        account="gap-000",
        sub_account=sub,
        instrument="BTC-PERPETUAL",
        side=side,
        qty=qty,
        price=100_000.0,
        liquidity="TAKER",
        ts=T0 + timedelta(minutes=minutes),
    )


def test_positions_at_a_moment_count_each_fill_once_and_drop_closed_ones() -> None:
    ledger = FillLedger()
    for fill in (
        _fill("f1", "BUY", 1.0, 0),
        _fill("f1", "BUY", 1.0, 0),  # a replayed fill: once
        _fill("f3", "SELL", 0.4, 10),
        _fill("f2", "SELL", 0.25, 5),  # out of order in time
        _fill("f4", "SELL", 0.35, 20),
        _fill("s1", "BUY", 2.0, 0, sub="hedge"),
    ):
        ledger.add(fill)
    assert ledger.positions_at("gap-000", T0 - timedelta(minutes=1)) == {}
    assert ledger.positions_at("gap-000", T0) == {"BTC-PERPETUAL": 1.0}
    assert ledger.positions_at("gap-000", T0 + timedelta(minutes=5)) == {"BTC-PERPETUAL": 0.75}
    assert ledger.positions_at("gap-000", T0 + timedelta(minutes=10)) == {"BTC-PERPETUAL": 0.35}
    assert ledger.positions_at("gap-000", T0 + timedelta(minutes=30)) == {}
    assert ledger.positions_at("gap-000/hedge", T0) == {"BTC-PERPETUAL": 2.0}


def _point(label: str, minute: float) -> TimelinePoint:
    return TimelinePoint(label, minute, {}, {}, 0.0, 0, 0)


def test_phases_span_from_the_step_before_to_the_last_of_a_run() -> None:
    points = [
        _point("open", 0),
        _point("calm", 15),
        _point("calm", 30),
        _point("crash", 35),
        _point("crash", 40),
        _point("recovery", 50),
        _point("end", 50),
    ]
    assert phases(points) == [("calm", 0, 30), ("crash", 30, 40), ("recovery", 40, 50)]
