"""Sub-accounts on a partition (margin-model.md section 11), without Kafka.

A hedge split across two cross-margined sub-accounts needs the same margin as in one account;
each sub-account's standalone requirement is in the master's status; an isolated sub-account is
margined alone, so its loss cannot draw on the master's collateral; the family survives a
restart from the table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.instruments import format_expiry
from streams import records as r
from streams.accounts.outputs import InputRef, Output
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.accounts.subaccounts import ISOLATION_GRACE_S
from streams.errors import InputRejected
from streams.market.state import MarketState

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

    def deposit(
        self,
        account: str,
        amount: float,
        sub: str | None = None,
        iso: bool = False,
        ts: datetime = T0,
    ) -> list[Output]:
        transfer = r.CollateralTransfer(
            transfer_id=f"t{self.offset}",
            account=account,
            sub_account=sub,
            isolated=iso,
            asset="USDC",
            amount=amount,
            kind="DEPOSIT",
            ts=ts,
        )
        return self._keep(self.proc.on_transfer(transfer, self._next("collateral")))

    def fill(
        self,
        account: str,
        inst: str,
        side: str,
        sub: str | None = None,
        iso: bool = False,
        ts: datetime = T0,
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
            ts=ts,
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


def test_a_cross_sub_account_with_positions_cannot_become_isolated_later() -> None:
    desk = Desk()
    desk.deposit("m", 50_000.0, sub="desk")
    with pytest.raises(InputRejected) as err:
        late = T0 + timedelta(seconds=ISOLATION_GRACE_S + 1)
        desk.fill("m", "BTC-PERPETUAL", "BUY", sub="desk", iso=True, ts=late)
    assert "cannot become isolated" in err.value.detail


@pytest.mark.parametrize("fill_after_ms", [0, 1, 250])
def test_isolation_declared_first_holds_whichever_input_arrives_first(fill_after_ms: int) -> None:
    """The issue's sequence: the flag rides only on the sub-account's first deposit and its
    first fill, stamped at or after it, arrives first (another topic). The fill is margined with
    the family until the deposit comes; then the sub-account's contributions leave the master,
    which ends exactly as if the deposit had come first."""
    later = T0 + timedelta(milliseconds=fill_after_ms)
    raced, ordered = Desk(), Desk()
    for desk in (raced, ordered):
        desk.deposit("m", 1_000_000.0)
    raced.fill("m", "BTC-PERPETUAL", "BUY", sub="iso", ts=later)
    raced.deposit("m", 25_000.0, sub="iso", iso=True)
    ordered.deposit("m", 25_000.0, sub="iso", iso=True)
    ordered.fill("m", "BTC-PERPETUAL", "BUY", sub="iso", ts=later)
    for desk in (raced, ordered):
        desk.mark("BTC", 80_000.0, T0 + timedelta(seconds=1))
        assert desk.last("m").equity == pytest.approx(1_000_000.0, rel=1e-12)
        assert desk.last("m", "iso").equity == pytest.approx(5_000.0, rel=1e-9)
        assert desk.last("m", "iso").state == r.AccountState.LIQUIDATION
        assert desk.last("m").state == r.AccountState.HEALTHY
        assert not desk.proc.records["m"].positions
    assert raced.proc.records["m"].collateral == ordered.proc.records["m"].collateral


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


# ----- isolation whatever the order: a property ------------------------------------------------

MEMBERS = (None, "c1", "c2", "i1", "i2")  # the master itself, two cross and two isolated subs
ISOLATED = {"i1", "i2"}


@st.composite
def _family_inputs(draw: st.DrawFn) -> list[r.Fill | r.CollateralTransfer]:
    """One master's inputs in event-time order, 1 ms apart: every member starts with a deposit
    (an isolated sub's carries the flag; so may its later inputs), then fills and transfers."""
    events: list[r.Fill | r.CollateralTransfer] = []
    order = list(MEMBERS) + draw(st.lists(st.sampled_from(MEMBERS), min_size=4, max_size=24))
    for n, member in enumerate(order):
        ts = T0 + timedelta(milliseconds=n)
        first = n < len(MEMBERS)
        iso = member in ISOLATED and (first or draw(st.booleans()))
        common = {"account": "m", "sub_account": member, "isolated": iso, "ts": ts}
        if first or draw(st.integers(0, 2)) == 0:
            amount = draw(st.sampled_from([5_000.0, 20_000.0, -1_000.0])) if not first else 30_000.0
            events.append(
                r.CollateralTransfer(
                    transfer_id=f"t{n}",
                    asset="USDC",
                    amount=amount,
                    kind="DEPOSIT" if amount > 0 else "WITHDRAWAL",
                    **common,
                )
            )
        else:
            events.append(
                r.Fill(
                    fill_id=f"f{n}",
                    instrument=draw(st.sampled_from(["BTC-PERPETUAL", FUTURE])),
                    side=draw(st.sampled_from(["BUY", "SELL"])),
                    qty=draw(st.sampled_from([0.1, 0.25, 0.5])),
                    price=draw(st.sampled_from([99_000.0, 100_000.0, 101_500.0])),
                    fee=draw(st.sampled_from([0.0, 2.5])),
                    liquidity="TAKER",
                    **common,
                )
            )
    return events


def _feed(desk: Desk, inputs: list[r.Fill | r.CollateralTransfer], breaks: list[bool]) -> None:
    """Apply inputs as a batch would: waves of distinct accounts, settled when an account
    repeats, at the end, and wherever ``breaks`` says."""
    proc, wave, accounts = desk.proc, [], set()
    for n, item in enumerate(inputs):
        if item.account in accounts or (breaks and breaks[n % len(breaks)]):
            for outs in proc.settle(wave):
                desk._keep(outs)
            wave, accounts = [], set()
        if isinstance(item, r.Fill):
            applied = proc.apply_fill(item, desk._next("fills"))
        else:
            applied = proc.apply_transfer(item, desk._next("collateral"))
        assert applied is not None
        wave.append(applied)
        accounts.add(item.account)
    for outs in proc.settle(wave):
        desk._keep(outs)


def _standalone_equity(inputs: list[r.Fill | r.CollateralTransfer], member: str | None) -> float:
    """A member's equity from its own inputs alone, in event-time order, at the final marks."""
    desk = Desk()
    mine = [
        i.model_copy(update={"account": f"alone-{member}", "sub_account": None, "isolated": False})
        for i in inputs
        if i.sub_account == member
    ]
    _feed(desk, mine, [])
    desk.mark("BTC", 93_000.0, T0 + timedelta(seconds=5))
    return float(desk.proc.book.margin([f"alone-{member}"]).equity[0])


@settings(max_examples=60, deadline=None)
@given(
    inputs=_family_inputs(),
    picks=st.lists(st.booleans(), min_size=1, max_size=60),
    breaks=st.lists(st.booleans(), max_size=8),
)
def test_isolated_sub_accounts_keep_their_own_whatever_the_order_and_batching(
    inputs: list[r.Fill | r.CollateralTransfer], picks: list[bool], breaks: list[bool]
) -> None:
    """Fills and transfers come on two topics, each in its own order (event time here), with
    any interleaving between them and any batching: the master's equity is its own and its
    cross sub-accounts' only, and each isolated sub-account's is its own."""
    fills = [i for i in inputs if isinstance(i, r.Fill)]
    transfers = [i for i in inputs if isinstance(i, r.CollateralTransfer)]
    arrival: list[r.Fill | r.CollateralTransfer] = []
    n = 0
    while fills or transfers:
        take_fill = bool(fills) and (not transfers or picks[n % len(picks)])
        arrival.append(fills.pop(0) if take_fill else transfers.pop(0))
        n += 1
    desk = Desk()
    _feed(desk, arrival, breaks)
    desk.mark("BTC", 93_000.0, T0 + timedelta(seconds=5))
    alone = {member: _standalone_equity(inputs, member) for member in MEMBERS}
    family = alone[None] + alone["c1"] + alone["c2"]
    book = desk.proc.book
    assert book.margin(["m"]).equity[0] == pytest.approx(family, rel=1e-9, abs=1e-6)
    for sub in sorted(ISOLATED):
        got = book.margin([f"m/{sub}"]).equity[0]
        assert got == pytest.approx(alone[sub], rel=1e-9, abs=1e-6), sub
        assert desk.proc.records["m"].subs[sub].isolated
