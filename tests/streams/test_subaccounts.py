"""Sub-accounts on a partition (margin-model.md section 11), without Kafka.

A hedge split across two cross-margined sub-accounts needs the same margin as in one account;
each sub-account's standalone requirement is in the master's status; an isolated sub-account is
margined alone, so its loss cannot draw on the master's collateral; the family survives a
restart from the table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.instruments import format_expiry
from streams import records as r
from streams.market_state import MarketState
from streams.portfolio import PortfolioRecord
from streams.processor import AccountProcessor, InputRef, InputRejected, Output

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)
EXPIRY = datetime(2026, 12, 25, 8, tzinfo=UTC)
FUTURE = f"BTC-{format_expiry(EXPIRY.timestamp())}"


class Desk:
    """A processor fed with broadcast updates, fills and transfers at increasing offsets."""

    def __init__(self) -> None:
        self.proc = AccountProcessor(0, MarketState())
        self.offset = 0
        self.statuses: list[r.MarginStatus] = []
        for inst in (
            r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=T0),
            r.InstrumentRecord(name=FUTURE, kind="FUTURE", underlying="BTC", expiry=EXPIRY, ts=T0),
        ):
            self._market(
                r.MarketUpdate(update_id="i", kind="INSTRUMENT", instrument=inst, seq=1, ts=T0)
            )
        self.mark("USDC", 1.0, T0)
        self.mark("BTC", 100_000.0, T0)

    def _next(self, topic: str) -> InputRef:
        self.offset += 1
        return InputRef(topic, 0, self.offset)

    def _keep(self, outs: list[Output]) -> list[Output]:
        self.statuses += [o.record for o in outs if o.topic == "margin-status"]  # type: ignore[misc]
        return outs

    def _market(self, update: r.MarketUpdate) -> list[Output]:
        return self._keep(self.proc.on_market(update, self._next("mb")))

    def mark(self, und: str, price: float, t: datetime) -> list[Output]:
        return self._market(
            r.MarketUpdate(
                update_id=f"m{self.offset}", kind="MARK", underlying=und, mark=price, seq=1, ts=t
            )
        )

    def deposit(self, account: str, amount: float, sub: str | None = None, iso: bool = False):
        transfer = r.CollateralTransfer(
            transfer_id=f"t{self.offset}",
            account=account,
            sub_account=sub,
            isolated=iso,
            asset="USDC",
            amount=amount,
            kind="DEPOSIT",
            ts=T0,
        )
        return self._keep(self.proc.on_transfer(transfer, self._next("collateral")))

    def fill(
        self, account: str, inst: str, side: str, sub: str | None = None, iso: bool = False
    ) -> list[Output]:
        fill = r.Fill(
            fill_id=f"f{self.offset}",
            account=account,
            sub_account=sub,
            isolated=iso,
            instrument=inst,
            side=side,
            qty=1.0,
            price=100_000.0,
            liquidity="TAKER",
            ts=T0,
        )
        return self._keep(self.proc.on_fill(fill, self._next("fills")))

    def last(self, account: str, sub: str | None = None) -> r.MarginStatus:
        return [s for s in self.statuses if s.account == account and s.sub_account == sub][-1]


def test_a_hedge_split_across_two_sub_accounts_needs_the_same_margin_as_in_one() -> None:
    desk = Desk()
    desk.deposit("solo", 50_000.0)
    desk.fill("solo", "BTC-PERPETUAL", "BUY")
    desk.fill("solo", FUTURE, "SELL")
    desk.deposit("fam", 50_000.0)
    desk.fill("fam", "BTC-PERPETUAL", "BUY", sub="long")
    desk.fill("fam", FUTURE, "SELL", sub="short")
    solo, fam = desk.last("solo"), desk.last("fam")
    assert fam.im == pytest.approx(solo.im, rel=1e-9)
    assert fam.mm == pytest.approx(solo.mm, rel=1e-9)
    assert fam.equity == pytest.approx(solo.equity, rel=1e-9)
    assert fam.state == solo.state == r.AccountState.HEALTHY
    # each leg alone is a directional position: its standalone requirement is far larger
    assert set(fam.sub_accounts) == {"long", "short"}
    assert min(fam.sub_accounts.values()) > 5 * fam.im
    assert fam.sub_account is None and not solo.sub_accounts
    # the same after a market move, and the standalone what-if rows never get statuses
    desk.mark("BTC", 90_000.0, T0 + timedelta(seconds=1))
    assert desk.proc.book.margin(["fam"]).im[0] == pytest.approx(
        desk.proc.book.margin(["solo"]).im[0], rel=1e-9
    )
    assert {s.account for s in desk.statuses} == {"solo", "fam"}


def test_an_isolated_sub_accounts_loss_cannot_draw_on_the_masters_collateral() -> None:
    desk = Desk()
    desk.deposit("m", 1_000_000.0)
    desk.deposit("m", 25_000.0, sub="iso", iso=True)
    desk.fill("m", "BTC-PERPETUAL", "BUY", sub="iso")  # the flag need not be repeated
    iso = desk.last("m", "iso")
    assert iso.state == r.AccountState.HEALTHY and iso.equity == pytest.approx(25_000.0)
    assert desk.last("m").equity == pytest.approx(1_000_000.0)
    assert desk.last("m").sub_accounts["iso"] == pytest.approx(iso.im)
    outs = desk.mark("BTC", 80_000.0, T0 + timedelta(seconds=1))
    iso = desk.last("m", "iso")
    assert iso.state == r.AccountState.LIQUIDATION and iso.equity == pytest.approx(5_000.0)
    master = desk.last("m")
    assert master.state == r.AccountState.HEALTHY
    assert desk.proc.book.margin(["m"]).equity[0] == pytest.approx(1_000_000.0)
    # the sub-account's status is keyed by its row (a compacted topic keeps one per row), its
    # orders by the master; the orders name the sub-account's row; the master owns them all
    assert {o.key for o in outs if o.topic == "margin-status"} == {"m/iso"}
    assert {o.key for o in outs if o.topic == "liquidations"} == {"m"}
    assert {o.owner or o.key for o in outs} == {"m"}
    orders = [o.record for o in outs if o.topic == "liquidations"]
    assert orders and {o.account for o in orders} == {"m/iso"}  # type: ignore[attr-defined]
    # the same position cross-margined draws on the shared collateral and stays HEALTHY
    cross = Desk()
    cross.deposit("m", 1_000_000.0)
    cross.deposit("m", 25_000.0, sub="desk")
    cross.fill("m", "BTC-PERPETUAL", "BUY", sub="desk")
    cross.mark("BTC", 80_000.0, T0 + timedelta(seconds=1))
    assert cross.last("m").state == r.AccountState.HEALTHY
    assert not [s for s in cross.statuses if s.sub_account]


def test_a_cross_sub_account_with_positions_cannot_become_isolated() -> None:
    desk = Desk()
    desk.deposit("m", 50_000.0, sub="desk")
    with pytest.raises(InputRejected) as err:
        desk.fill("m", "BTC-PERPETUAL", "BUY", sub="desk", iso=True)
    assert "cannot become isolated" in err.value.detail


def test_the_family_survives_a_restart_from_the_table() -> None:
    desk = Desk()
    desk.deposit("m", 100_000.0)
    desk.fill("m", "BTC-PERPETUAL", "BUY", sub="a")
    desk.deposit("m", 30_000.0, sub="iso", iso=True)
    desk.fill("m", FUTURE, "SELL", sub="iso")
    before = desk.proc.book.margin(["m", "m/a", "m/iso"])
    table = {k: PortfolioRecord.from_dict(v.to_dict()) for k, v in desk.proc.records.items()}
    proc = AccountProcessor(0, desk.proc.market)
    proc.load(table)
    after = proc.book.margin(["m", "m/a", "m/iso"])
    assert after.im.tolist() == pytest.approx(before.im.tolist())
    assert after.equity.tolist() == pytest.approx(before.equity.tolist())
    assert list(proc.records) == ["m"]
