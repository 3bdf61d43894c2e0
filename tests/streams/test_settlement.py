"""Instrument lifecycle without Kafka: a daily expiry in the middle of a partition's stream.

Fills on a future, a call and a put that expire at 08:00 the next day, the market moving past the
expiry, the exchange's settlement at a delivery price, fills after it: every expired position is
closed at its settlement value, the cash booked equals a plain offline computation to the cent,
each family says its status, the instrument leaves the book, and what comes after the expiry is
refused. Settlement values against known figures; the market agent's checks of a state change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from engine.expiry import settlement_value
from engine.instruments import InstrumentError, parse_instrument
from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.processor import AccountProcessor
from streams.errors import InputRejected
from streams.market.state import MarketState, market_from_dict, market_to_dict
from streams.records import DlqReason, InstrumentState
from tests.streams import samples

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)
EXPIRY = datetime(2026, 11, 25, 8, tzinfo=UTC)
FUTURE, CALL, PUT = "BTC-25NOV26", "BTC-25NOV26-100000-C", "BTC-25NOV26-104000-P"
DELIVERY = 101_234.56


def test_settlement_values_against_known_figures() -> None:
    future, call, put = (parse_instrument(n) for n in (FUTURE, CALL, PUT))
    assert settlement_value(future, 101_234.56) == 101_234.56
    assert settlement_value(call, 101_234.56) == pytest.approx(1_234.56, abs=1e-9)
    assert settlement_value(call, 99_000.0) == 0.0
    assert settlement_value(put, 101_234.56) == pytest.approx(2_765.44, abs=1e-9)
    assert settlement_value(put, 105_000.0) == 0.0
    with pytest.raises(InstrumentError):
        settlement_value(parse_instrument("BTC-PERPETUAL"), 100_000.0)
    with pytest.raises(InstrumentError):
        settlement_value(future, 0.0)


def _listing(name: str, **changes: object) -> r.InstrumentRecord:
    inst = parse_instrument(name)
    values: dict[str, object] = dict(
        name=name,
        kind=inst.kind.value,
        underlying="BTC",
        expiry=None if inst.expiry is None else datetime.fromtimestamp(inst.expiry, tz=UTC),
        strike=inst.strike,
        option_type=inst.option_type.value if inst.option_type else None,
        ts=T0,
    )
    return r.InstrumentRecord.model_validate(values | changes)


def _settled(
    name: str, price: float = DELIVERY, at: timedelta = timedelta(minutes=1)
) -> r.InstrumentRecord:
    return _listing(name, state="SETTLED", settlement_price=price, ts=EXPIRY + at)


@dataclass
class Stream:
    """A market agent and one account partition fed its broadcasts, offsets counted."""

    agent: MarketState
    proc: AccountProcessor
    offset: int = 0

    def market(self, update: r.MarketUpdate | None) -> list[r.Record]:
        self.offset += 1
        if update is None:
            return []
        outputs = self.proc.on_market(update, InputRef("mb", 0, self.offset))
        return [o.record for o in outputs]

    def quotes(self, ts: datetime, btc: float) -> None:
        for source in ("a", "b", "c"):
            for und, px in (("BTC", btc), ("USDC", 1.0)):
                quote = r.OraclePrice(source=source, underlying=und, price=px, ts=ts)
                self.market(self.agent.on_price(quote, f"{source}-{und}-{ts}"))

    def fill(
        self,
        n: int,
        account: str,
        name: str,
        side: str,
        qty: float,
        price: float,
        fee: float,
        ts: datetime,
    ) -> list[r.Record]:
        fill = r.Fill(
            fill_id=f"f{n}",
            account=account,
            instrument=name,
            side=side,
            qty=qty,
            price=price,
            fee=fee,
            liquidity="TAKER",
            ts=ts,
        )
        self.offset += 1
        return [o.record for o in self.proc.on_fill(fill, InputRef("fills", 0, self.offset))]


def _stream() -> Stream:
    """BTC listed (perpetual, the expiring future, call and put), a vol surface, marks at
    100,000, accounts a, b and c funded with 1 M USDC."""
    s = Stream(MarketState(), AccountProcessor(0, MarketState()))
    for name in ("BTC-PERPETUAL", FUTURE, CALL, PUT):
        s.market(s.agent.on_instrument(_listing(name), name))
    s.market(s.agent.on_vol(samples.VOL.model_copy(update={"ts": T0}), "v"))
    s.quotes(T0, 100_000.0)
    for account in "abc":
        _, _, transfer = samples.deposit(account, 1e6, T0, f"dep-{account}")
        assert isinstance(transfer, r.CollateralTransfer)
        s.offset += 1
        s.proc.on_transfer(transfer, InputRef("collateral", 0, s.offset))
    return s


TRADES = [  # account, instrument, side, qty, price, fee
    ("a", FUTURE, "BUY", 2.0, 100_050.0, 10.0),
    ("a", FUTURE, "SELL", 0.5, 100_400.0, 2.5),
    ("a", CALL, "BUY", 3.0, 2_100.0, 3.0),
    ("b", FUTURE, "SELL", 1.5, 100_020.0, 7.0),
    ("b", PUT, "SELL", 2.0, 4_600.0, -1.0),
    ("b", "BTC-PERPETUAL", "BUY", 1.0, 100_000.0, 5.0),
    ("c", CALL, "SELL", 2.0, 2_000.0, 1.0),
    ("c", CALL, "BUY", 1.0, 2_200.0, 1.0),
]


def _offline_usdc(trades: list[tuple[str, str, str, float, float, float]]) -> dict[str, float]:
    """Each account's USD cash at the end, in plain Python: the deposit less fees, each
    future's fills at their prices and its net quantity at the delivery price, each option's
    premiums and its net quantity at its intrinsic value (the perpetual stays open)."""
    cash = {a: 1e6 for a in "abc"}
    net: dict[tuple[str, str], float] = {}
    for account, name, side, qty, price, fee in trades:
        signed = qty if side == "BUY" else -qty
        cash[account] -= fee
        if name != "BTC-PERPETUAL":
            cash[account] -= signed * price
            net[account, name] = net.get((account, name), 0.0) + signed
    payoff = {
        FUTURE: DELIVERY,
        CALL: max(DELIVERY - 100_000.0, 0.0),
        PUT: max(104_000.0 - DELIVERY, 0.0),
    }
    for (account, name), qty in net.items():
        cash[account] += qty * payoff[name]
    return cash


def test_a_daily_expiry_in_the_middle_of_a_stream_settles_to_the_cent() -> None:
    s = _stream()
    for n, (account, name, side, qty, price, fee) in enumerate(TRADES):
        s.fill(n, account, name, side, qty, price, fee, T0 + timedelta(hours=1, seconds=n))
    s.quotes(EXPIRY - timedelta(minutes=5), 101_000.0)
    s.quotes(EXPIRY + timedelta(seconds=30), 101_300.0)  # the market moves past the expiry
    for name in (FUTURE, CALL, PUT):  # the exchange: expired, then settled
        s.market(s.agent.on_instrument(_listing(name, state="EXPIRED", ts=EXPIRY), name))
    statuses: list[r.Record] = []
    for name in (FUTURE, CALL, PUT):
        statuses += s.market(s.agent.on_instrument(_settled(name), f"{name}-settled"))
    s.quotes(EXPIRY + timedelta(minutes=2), 99_000.0)  # a spot that keeps moving changes no cash

    records = s.proc.records
    cash = _offline_usdc(TRADES)
    for account in "abc":  # deposits in USDC, fills' cash in USD (the settlement currency)
        held = records[account].collateral
        assert held.keys() <= {"USDC", "USD"}
        assert round(held["USDC"] + held.get("USD", 0.0), 2) == round(cash[account], 2)
    assert set(records["b"].positions) == {"BTC-PERPETUAL"}
    assert not records["a"].positions and not records["c"].positions
    said = {
        x.account for x in statuses if isinstance(x, r.MarginStatus) and x.reason == "SETTLEMENT"
    }
    assert said == {"a", "b", "c"}
    book = s.proc.book
    columns = {book.instruments.instruments[g].name for g in book.underlying_book("BTC").gids}
    assert columns == {"BTC-PERPETUAL"}  # the settled instruments left the book
    assert book.margin(["a", "b", "c"]).accounts == ["a", "b", "c"]


def test_fills_after_the_expiry_are_refused_and_a_late_one_from_before_settles_at_once() -> None:
    s = _stream()
    s.fill(0, "a", FUTURE, "BUY", 1.0, 100_000.0, 1.0, T0 + timedelta(hours=1))
    s.quotes(EXPIRY + timedelta(seconds=30), 101_000.0)
    s.market(s.agent.on_instrument(_settled(FUTURE), "settled"))
    after = r.Fill(
        fill_id="late",
        account="a",
        instrument=FUTURE,
        side="BUY",
        qty=1.0,
        price=101_000.0,
        fee=1.0,
        liquidity="TAKER",
        ts=EXPIRY + timedelta(seconds=40),
    )
    with pytest.raises(InputRejected) as err:
        s.proc.apply_fill(after, InputRef("fills", 0, 1000))
    assert err.value.reason is DlqReason.EXPIRED_INSTRUMENT
    # A fill stamped before the expiry that the partition sees after the settlement
    s.fill(1, "b", FUTURE, "SELL", 2.0, 100_900.0, 2.0, EXPIRY - timedelta(seconds=1))
    b = s.proc.records["b"]
    assert FUTURE not in b.positions
    assert round(b.collateral["USD"], 2) == round(-2.0 + 2.0 * (100_900.0 - DELIVERY), 2)
    a = s.proc.records["a"]
    assert round(a.collateral["USD"], 2) == round(-1.0 + (DELIVERY - 100_000.0), 2)


def test_the_market_agent_checks_a_state_change() -> None:
    agent = MarketState()
    agent.on_instrument(_listing(FUTURE), "l")
    for source in ("a", "b"):
        agent.on_price(
            r.OraclePrice(source=source, underlying="BTC", price=100_000.0, ts=T0), source
        )

    def refused(record: r.InstrumentRecord) -> DlqReason:
        with pytest.raises(InputRejected) as err:
            agent.on_instrument(record, "x")
        return err.value.reason

    early = _listing(
        FUTURE, state="SETTLED", settlement_price=DELIVERY, ts=EXPIRY - timedelta(seconds=1)
    )
    assert refused(early) is DlqReason.INVALID_VALUE
    assert refused(_settled(FUTURE, price=400_000.0)) is DlqReason.OUT_OF_RANGE
    update = agent.on_instrument(_settled(FUTURE), "s")
    assert update.instrument is not None and update.instrument.state is InstrumentState.SETTLED
    agent.on_instrument(_settled(FUTURE, at=timedelta(minutes=2)), "again")  # the same price: taken
    assert refused(_settled(FUTURE, price=DELIVERY + 1.0)) is DlqReason.INVALID_VALUE
    assert refused(_listing(FUTURE, ts=T0)) is DlqReason.EXPIRED_INSTRUMENT  # listed again
    with pytest.raises(ValueError):
        _listing(FUTURE, state="SETTLED", ts=EXPIRY)  # a settlement without its price
    back = market_from_dict(market_to_dict(agent))
    assert (back.settled, back.expired) == ({FUTURE: DELIVERY}, {FUTURE})
