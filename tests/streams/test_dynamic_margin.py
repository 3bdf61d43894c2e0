"""Dynamic margin on a partition (margin-model.md section 12), without Kafka.

Raising BTC's EWMA volatility raises its effective PSR and the account's margin on the same
update; lowering it lets the PSR fall by at most 10% a day, across updates and a restart of the
partition's market state.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from engine.params import RiskParams
from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.processor import AccountProcessor
from streams.market.state import MarketState, market_from_dict, market_to_dict

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)
BASE = RiskParams().psr_for("BTC")


class Feed:
    """Broadcast MARK updates with a chosen EWMA vol straight to a processor (the market agent's
    output), numbered like the market-broadcast partition."""

    def __init__(self, proc: AccountProcessor) -> None:
        self.proc = proc
        self.seq = 0

    def send(self, update: r.MarketUpdate) -> list[r.MarginStatus]:
        self.seq += 1
        outs = self.proc.on_market(update, InputRef("mb", 0, self.seq))
        return [o.record for o in outs if o.topic == "margin-status"]  # type: ignore[misc]

    def mark(self, und: str, price: float, t: datetime, vol: float | None = None) -> None:
        self.send(
            r.MarketUpdate(
                update_id=f"m{self.seq}",
                kind="MARK",
                underlying=und,
                mark=price,
                ewma_vol=vol,
                seq=self.seq + 1,
                ts=t,
            )
        )


def _setup() -> tuple[AccountProcessor, Feed]:
    proc = AccountProcessor(0, MarketState())
    feed = Feed(proc)
    inst = r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=T0)
    feed.send(r.MarketUpdate(update_id="i", kind="INSTRUMENT", instrument=inst, seq=1, ts=T0))
    feed.mark("USDC", 1.0, T0)
    feed.mark("BTC", 100_000.0, T0, 0.5)
    proc.on_transfer(
        r.CollateralTransfer(
            transfer_id="d", account="x", asset="USDC", amount=50_000.0, kind="DEPOSIT", ts=T0
        ),
        InputRef("collateral", 0, 1),
    )
    proc.on_fill(
        r.Fill(
            fill_id="f",
            account="x",
            instrument="BTC-PERPETUAL",
            side="BUY",
            qty=1.0,
            price=100_000.0,
            liquidity="TAKER",
            ts=T0,
        ),
        InputRef("fills", 0, 1),
    )
    return proc, feed


def _im(proc: AccountProcessor) -> float:
    return float(proc.book.margin(["x"]).im[0])


def _target(annual: float) -> float:
    return max(BASE, 2.5 * annual / math.sqrt(365.0) * math.sqrt(2.0))


def test_raising_the_ewma_vol_raises_psr_and_margin_at_once() -> None:
    proc, feed = _setup()
    assert proc.book.underlyings["BTC"].grid.psr == pytest.approx(BASE)
    im_calm = _im(proc)
    t1 = T0 + timedelta(seconds=1)
    feed.mark("BTC", 100_000.0, t1, 1.5)  # 150% a year: 2.5 x sigma_1d x sqrt(2) ~ 27.8%
    psr = proc.book.underlyings["BTC"].grid.psr
    assert psr == pytest.approx(_target(1.5)) and psr > BASE
    assert _im(proc) > im_calm * 1.5
    # the status of the next input names the PSR it used and the parameter version
    outs = proc.on_transfer(
        r.CollateralTransfer(
            transfer_id="d2", account="x", asset="USDC", amount=1.0, kind="DEPOSIT", ts=t1
        ),
        InputRef("collateral", 0, 2),
    )
    status = outs[0].record
    assert status.psr["BTC"] == pytest.approx(psr)  # type: ignore[attr-defined]
    assert status.params_version == "default@1"  # type: ignore[attr-defined]


def test_lowering_the_vol_lowers_psr_by_at_most_ten_percent_a_day() -> None:
    proc, feed = _setup()
    t = T0 + timedelta(seconds=1)
    feed.mark("BTC", 100_000.0, t, 2.0)
    high = proc.book.underlyings["BTC"].grid.psr
    assert high == pytest.approx(_target(2.0))
    # vol back to calm: hourly ticks for two days; the PSR decays, never faster than 10% a day
    last = high
    for hour in range(1, 49):
        feed.mark("BTC", 100_000.0, t + timedelta(hours=hour), 0.5)
        now = proc.book.underlyings["BTC"].grid.psr
        assert now <= last + 1e-12
        assert now >= high * 0.9 ** (hour / 24) - 1e-9
        last = now
    assert last == pytest.approx(high * 0.81)
    # the bound survives a restart of the partition (state from the table)
    restored = market_from_dict(market_to_dict(proc.market))
    proc2 = AccountProcessor(0, restored)
    proc2.load(proc.records)
    assert proc2.book.underlyings["BTC"].grid.psr == pytest.approx(last)
    feed2 = Feed(proc2)
    feed2.seq = feed.seq
    feed2.mark("BTC", 100_000.0, t + timedelta(hours=49), 0.5)
    assert proc2.book.underlyings["BTC"].grid.psr == pytest.approx(high * 0.9 ** (49 / 24))
    # long enough later it is back at the base PSR, never below
    feed2.mark("BTC", 100_000.0, t + timedelta(days=60), 0.5)
    assert proc2.book.underlyings["BTC"].grid.psr == pytest.approx(BASE)
