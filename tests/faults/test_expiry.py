"""A stream crossing a daily expiry on a live worker: settlement to the cent.

A future, a call and a put on BTC expire a minute into the stream. 60 accounts funded with 1 M
USDC trade 600 seeded random fills on them before the expiry; the market moves past it; the
exchange publishes the three instruments EXPIRED, then SETTLED at a delivery price. Every
account's positions are closed at the settlement values, each says a SETTLEMENT status, and its
cash equals a plain computation (deposit, fees, premiums and futures' prices paid, net quantity
times the settlement value) to the cent. Fills stamped after the expiry go to the dlq
(EXPIRED_INSTRUMENT); fills stamped before it that arrive after the settlement are applied and
settled at once, also to the cent.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.instruments import format_expiry
from streams import records as r
from tests.faults import scenario
from tests.faults.chaos import Chaos, Input, chaos
from tests.streams import samples

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ACCOUNTS = scenario.accounts(60)
FILLS = 600
DELIVERY = 101_234.56
STRIKE_CALL, STRIKE_PUT = 100_000.0, 101_000.0


def _names(expiry: datetime) -> dict[str, float | None]:
    """The expiring instruments and their strikes (None: the future)."""
    day = format_expiry(expiry.timestamp())
    return {
        f"BTC-{day}": None,
        f"BTC-{day}-{STRIKE_CALL:.0f}-C": STRIKE_CALL,
        f"BTC-{day}-{STRIKE_PUT:.0f}-P": STRIKE_PUT,
    }


def _listing(
    name: str, strike: float | None, expiry: datetime, **state: object
) -> r.InstrumentRecord:
    """An expiring instrument's record at its expiry's time (``state``: its lifecycle fields
    and time)."""
    terms: dict[str, object] = {"kind": "FUTURE"}
    if strike is not None:
        terms = {
            "kind": "OPTION",
            "strike": strike,
            "option_type": "CALL" if name.endswith("C") else "PUT",
        }
    values = {"name": name, "underlying": "BTC", "expiry": expiry, "ts": expiry} | terms | state
    return r.InstrumentRecord.model_validate(values)


def _value(strike: float | None, name: str) -> float:
    """What one unit pays at the delivery price."""
    if strike is None:
        return DELIVERY
    return max(DELIVERY - strike, 0.0) if name.endswith("C") else max(strike - DELIVERY, 0.0)


def _fills(
    c: Chaos,
    names: dict[str, float | None],
    t0: datetime,
    n: int,
    first: int,
    seed: int,
    ts: datetime | None = None,
) -> list[Input]:
    """n seeded fills over the accounts and the expiring instruments (stamped one ms apart from
    t0 + 1 s, or all at ``ts``)."""
    rng = random.Random(seed)
    out = []
    for i in range(first, first + n):
        account = rng.choice(ACCOUNTS)
        name, strike = rng.choice(list(names.items()))
        price = scenario.BTC + rng.randint(-500, 500) if strike is None else rng.randint(200, 2000)
        fill = r.Fill(
            fill_id=f"x-{i:05d}",
            account=account,
            instrument=name,
            side=rng.choice(("BUY", "SELL")),
            qty=rng.randint(1, 30) / 10,
            price=float(price),
            fee=rng.randint(0, 300) / 100,
            liquidity="TAKER",
            ts=ts or t0 + timedelta(seconds=1, milliseconds=i),
        )
        out.append(c.encode("fills", account, fill))
    return out


def _net(fills: list[Input]) -> dict[tuple[str, str], float]:
    """Each account's net quantity of each instrument."""
    net: dict[tuple[str, str], float] = {}
    for item in fills:
        f = item.record
        assert isinstance(f, r.Fill)
        net[f.account, f.instrument] = net.get((f.account, f.instrument), 0.0) + f.signed_qty
    return net


def _expected_cash(fills: list[Input], names: dict[str, float | None]) -> dict[str, float]:
    """Each account's USDC plus USD at the end, in plain arithmetic."""
    cash = dict.fromkeys(ACCOUNTS, scenario.DEPOSIT)
    for item in fills:
        f = item.record
        assert isinstance(f, r.Fill)
        cash[f.account] -= f.fee + f.signed_qty * f.price
    for (account, name), qty in _net(fills).items():
        cash[account] += qty * _value(names[name], name)
    return cash


def test_a_stream_crossing_an_expiry_settles_to_the_cent(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with chaos(kafka_bootstrap, tmp_path, partitions=4) as c:
        out = c.collect(("margin-status", "market-broadcast", "dlq"))
        c.start()
        t0 = scenario.start_time()
        expiry = t0 + timedelta(minutes=1)
        names = _names(expiry)
        listings = [_listing(n, k, expiry, ts=t0) for n, k in names.items()]
        vol = samples.VOL.model_copy(update={"ts": t0})
        c.produce(
            [c.encode("instruments", x.name, x) for x in listings]
            + [c.encode("vol-surfaces", "BTC", vol)]
        )
        sent = scenario.open_accounts(c, out, ACCOUNTS, t0)
        before = _fills(c, names, t0, FILLS, 0, seed=7)
        c.wait_statuses(out, c.produce(before), timeout_s=120)

        c.produce(scenario.quotes(c, expiry + timedelta(seconds=10), 101_000.0))
        ends = [_listing(n, k, expiry, state="EXPIRED") for n, k in names.items()]
        ends += [
            _listing(
                n,
                k,
                expiry,
                state="SETTLED",
                settlement_price=DELIVERY,
                ts=expiry + timedelta(seconds=20),
            )
            for n, k in names.items()
        ]
        c.produce([c.encode("instruments", x.name, x) for x in ends])
        holders = {a for (a, _), q in _net(before).items() if abs(q) > 1e-9}

        def settled(collector: object) -> bool:
            said = {s.account for s in out.decoded("margin-status") if s.reason == "SETTLEMENT"}  # type: ignore[attr-defined]
            return holders <= said

        out.wait(settled, timeout_s=90, what="a SETTLEMENT status of every account that traded")
        after = _fills(c, names, t0, 20, FILLS, seed=8, ts=expiry + timedelta(seconds=30))
        late = _fills(c, names, t0, 10, FILLS + 20, seed=9, ts=expiry - timedelta(milliseconds=500))
        c.produce(after)
        c.wait_statuses(out, c.produce(late), timeout_s=60)
        c.wait_count(out, "dlq", len(after), timeout_s=60)

        dlq = out.decoded("dlq")
        assert [d.reason for d in dlq] == [r.DlqReason.EXPIRED_INSTRUMENT] * len(after), dlq[:3]  # type: ignore[attr-defined]
        cash = _expected_cash(before + late, names)
        table = c.table()
        assert sent and sorted(table) == sorted(ACCOUNTS)
        for account in ACCOUNTS:
            held = table[account].collateral
            assert not table[account].positions, (account, table[account].positions)
            got = held.get("USDC", 0.0) + held.get("USD", 0.0)
            assert round(got, 2) == round(cash[account], 2), (account, got, cash[account])
