"""The account processor without Kafka: statuses, calls, liquidation orders and the stale guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams import records as r
from streams.accounts import processor
from streams.accounts.outputs import InputRef, Output
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.market.state import MarketState

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)


def _market(
    proc: AccountProcessor, market: MarketState, price: float, t: datetime, sources: int = 3
) -> list[Output]:
    """Feed quotes through a market agent and broadcast the accepted updates."""
    outputs: list[Output] = []
    for i, source in enumerate(("a", "b", "c")[:sources]):
        for und, px in (("BTC", price), ("USDC", 1.0)):
            update = market.on_price(
                r.OraclePrice(source=source, underlying=und, price=px, weight=1.0, ts=t),
                f"q-{und}-{t.timestamp()}-{i}",
            )
            if update is not None:
                outputs += proc.on_market(update, InputRef("mb", 0, int(t.timestamp()) * 10 + i))
    return outputs


def _setup() -> tuple[AccountProcessor, MarketState]:
    market = MarketState()
    proc = AccountProcessor(0, MarketState())
    inst = r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=T0)
    proc.on_market(market.on_instrument(inst, "i"), InputRef("mb", 0, 0))
    _market(proc, market, 100_000.0, T0)
    proc.on_transfer(
        r.CollateralTransfer(
            transfer_id="d", account="x", asset="USDC", amount=20_000.0, kind="DEPOSIT", ts=T0
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
    return proc, market


def test_a_crash_sends_liquidation_orders_once_per_interval() -> None:
    proc, market = _setup()
    out = _market(proc, market, 90_000.0, T0 + timedelta(seconds=1))
    orders = [o.record for o in out if o.topic == "liquidations"]
    assert orders and all(o.side.value == "SELL" for o in orders)  # type: ignore[attr-defined]
    assert sum(o.qty for o in orders) <= 1.0  # type: ignore[attr-defined]
    again = _market(proc, market, 89_000.0, T0 + timedelta(seconds=2))
    assert not [o for o in again if o.topic == "liquidations"]


def test_orders_repeat_on_an_unchanged_market_without_a_new_status() -> None:
    proc, market = _setup()
    first = _market(proc, market, 90_000.0, T0 + timedelta(seconds=1))
    assert [o for o in first if o.topic == "liquidations"]
    t = T0 + timedelta(seconds=62)  # nothing filled; only the stablecoin ticks
    later = [
        o
        for i, source in enumerate("abc")
        for u in [
            market.on_price(
                r.OraclePrice(source=source, underlying="USDC", price=1.0, weight=1.0, ts=t),
                f"usdc-{i}",
            )
        ]
        if u is not None
        for o in proc.on_market(u, InputRef("mb", 0, 900 + i))
    ]
    assert not [o for o in later if o.topic == "margin-status"]  # the ratio did not move
    repeated = [o.record for o in later if o.topic == "liquidations"]
    assert repeated and all(o.side.value == "SELL" for o in repeated)  # type: ignore[attr-defined]


def test_no_liquidation_on_a_stale_mark() -> None:
    proc, market = _setup()
    out = _market(proc, market, 100_000.0, T0 + timedelta(seconds=30), sources=1)
    assert "BTC" in market.stale
    out += _market(proc, market, 80_000.0, T0 + timedelta(seconds=31), sources=1)
    assert not [o for o in out if o.topic == "liquidations"]


def test_replayed_and_duplicate_inputs() -> None:
    proc, _ = _setup()
    fill = r.Fill(
        fill_id="f",
        account="x",
        instrument="BTC-PERPETUAL",
        side="BUY",
        qty=1.0,
        price=100_000.0,
        liquidity="TAKER",
        ts=T0,
    )
    assert proc.on_fill(fill, InputRef("fills", 0, 1)) == []  # same offset: a replay
    try:
        proc.on_fill(fill, InputRef("fills", 0, 7))
    except Exception as exc:  # a known id at a new offset
        assert "DUPLICATE" in str(exc)
    else:
        raise AssertionError("a duplicate fill id was applied")
    assert proc.records["x"].positions["BTC-PERPETUAL"].qty == 1.0


def test_a_liquidation_fill_owes_its_fee_to_the_fund() -> None:
    proc, _ = _setup()
    fill = r.Fill(
        fill_id="liq-1",
        account="x",
        instrument="BTC-PERPETUAL",
        side="SELL",
        qty=0.5,
        price=99_000.0,
        fee=247.5,
        liquidity="LIQUIDATION",
        ts=T0 + timedelta(seconds=1),
    )
    out = proc.on_fill(fill, InputRef("fills", 0, 2))
    (fee,) = [o.record for o in out if o.topic == "insurance-claims"]
    assert isinstance(fee, r.LiquidationFee)
    assert (fee.fee_id, fee.amount, fee.account) == ("fee-liq-1", 247.5, "x")
    assert proc.records["x"].positions["BTC-PERPETUAL"].qty == 0.5


def test_a_gap_below_zero_equity_claims_the_deficit_once_with_the_positions() -> None:
    proc, market = _setup()
    out = _market(proc, market, 75_000.0, T0 + timedelta(seconds=1))
    claims = [o.record for o in out if isinstance(o.record, r.InsuranceClaim)]
    (claim,) = claims
    status = [o.record for o in out if o.topic == "margin-status"][-1]
    assert status.state.value == "BANKRUPT"  # type: ignore[attr-defined]
    assert claim.deficit == pytest.approx(-status.equity)  # type: ignore[attr-defined]
    assert [(p.instrument, p.qty, p.mark) for p in claim.positions] == [
        ("BTC-PERPETUAL", 1.0, 75_000.0)
    ]
    assert not [o for o in out if o.topic == "liquidations"]  # past bankruptcy: no book orders
    again = _market(proc, market, 74_000.0, T0 + timedelta(seconds=2))
    assert not [o for o in again if isinstance(o.record, r.InsuranceClaim)]


def test_a_claim_says_which_payouts_the_account_has_received() -> None:
    """Payouts applied are counted, so that the fund can tell a repeated claim's payouts in
    flight (streams/fund/owner.py); the count survives the table."""
    proc, market = _setup()
    out = _market(proc, market, 75_000.0, T0 + timedelta(seconds=1))
    (claim,) = [o.record for o in out if isinstance(o.record, r.InsuranceClaim)]
    assert claim.payouts_received == 0.0
    payout = r.CollateralTransfer(
        transfer_id="p1",
        account="x",
        asset="USD",
        amount=1_234.5,
        kind="INSURANCE_PAYOUT",
        ts=T0 + timedelta(seconds=2),
    )
    proc.on_transfer(payout, InputRef("collateral", 0, 5))
    record = proc.records["x"]
    assert record.payouts_received == 1_234.5
    assert PortfolioRecord.from_dict(record.to_dict()).payouts_received == 1_234.5
    record.claimed = []  # ADL closed the claimed position's share (here: pretend it did)
    later = _market(proc, market, 60_000.0, T0 + timedelta(seconds=200))
    (again,) = [o.record for o in later if isinstance(o.record, r.InsuranceClaim)]
    assert again.payouts_received == 1_234.5


def test_profitable_positions_are_published_as_adl_candidates_once_per_interval() -> None:
    proc, market = _setup()
    proc.on_transfer(
        r.CollateralTransfer(
            transfer_id="d2", account="y", asset="USDC", amount=50_000.0, kind="DEPOSIT", ts=T0
        ),
        InputRef("collateral", 0, 2),
    )
    proc.on_fill(
        r.Fill(
            fill_id="g",
            account="y",
            instrument="BTC-PERPETUAL",
            side="SELL",
            qty=2.0,
            price=100_000.0,
            liquidity="TAKER",
            ts=T0,
        ),
        InputRef("fills", 0, 2),
    )
    _market(proc, market, 98_000.0, T0 + timedelta(seconds=3))  # the mark moves
    out = _market(proc, market, 98_000.0, T0 + timedelta(seconds=10))
    (cand,) = [o.record for o in out if isinstance(o.record, r.AdlCandidate)]
    assert (cand.account, cand.qty, cand.partition) == ("y", -2.0, 0)
    # profit ratio x effective leverage: 4,000 / 50,000 x 196,000 / 54,000
    assert cand.rank_score == pytest.approx(4_000 / 50_000 * 196_000 / 54_000, rel=1e-6)
    soon = _market(proc, market, 97_000.0, T0 + timedelta(seconds=11))
    assert not [o for o in soon if isinstance(o.record, r.AdlCandidate)]


def test_a_deposit_before_its_market_gets_a_status_when_the_market_comes() -> None:
    market = MarketState()
    proc = AccountProcessor(0, MarketState())
    deposit = r.CollateralTransfer(
        transfer_id="d0", account="early", asset="USDC", amount=1e6, kind="DEPOSIT", ts=T0
    )
    assert not [o for o in proc.on_transfer(deposit, InputRef("collateral", 0, 0))]
    out = _market(proc, market, 100_000.0, T0 + timedelta(seconds=1))
    (status,) = [o.record for o in out if o.topic == "margin-status"]
    assert status.account == "early" and status.state.value == "HEALTHY"  # type: ignore[attr-defined]


def _wave_inputs() -> list[r.Record]:
    """Deposits then fills of a dozen accounts, sized to land in every state from HEALTHY to
    LIQUIDATION (and one liquidation fill owing a fee)."""
    deposits = [
        r.CollateralTransfer(
            transfer_id=f"w-d{n}",
            account=f"w{n}",
            asset="USDC",
            amount=2_000.0 + 1_500.0 * n,
            kind="DEPOSIT",
            ts=T0,
        )
        for n in range(12)
    ]
    fills = [
        r.Fill(
            fill_id=f"w-f{n}",
            account=f"w{n}",
            instrument="BTC-PERPETUAL",
            side="BUY" if n % 2 else "SELL",
            qty=0.4 + 0.05 * n,
            price=100_000.0,
            fee=3.0 if n == 5 else 0.0,
            liquidity="LIQUIDATION" if n == 5 else "TAKER",
            ts=T0 + timedelta(seconds=1),
        )
        for n in range(12)
    ]
    inputs: list[r.Record] = [*deposits, *fills]
    return inputs


def _apply(proc: AccountProcessor, value: r.Record, ref: InputRef):  # type: ignore[no-untyped-def]
    if isinstance(value, r.Fill):
        return proc.apply_fill(value, ref)
    return proc.apply_transfer(value, ref)  # type: ignore[arg-type]


@pytest.mark.parametrize("one_pass_from", [1, 1_000])
def test_a_wave_of_accounts_settled_at_once_gives_each_input_its_own_outputs(
    one_pass_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch path (apply many, settle once: in one vectorised pass, or account by account)
    against one input at a time: the same outputs for each input, statuses equal to the last
    bits the two margin paths share."""
    monkeypatch.setattr(processor, "ONE_PASS_FROM", one_pass_from)
    one, _ = _setup()
    wave, _ = _setup()
    inputs = _wave_inputs()
    refs = [InputRef("fills", 0, 100 + i) for i in range(len(inputs))]
    expected = [
        one.on_fill(v, ref) if isinstance(v, r.Fill) else one.on_transfer(v, ref)  # type: ignore[arg-type]
        for v, ref in zip(inputs, refs, strict=True)
    ]
    got: list[list[Output]] = []
    for part in (slice(0, 12), slice(12, 24)):  # the deposits, then the fills: one per account
        applied = [_apply(wave, v, ref) for v, ref in zip(inputs[part], refs[part], strict=True)]
        got += wave.settle(applied)
    assert len(got) == len(expected) == 24
    states = set()
    for want, have in zip(expected, got, strict=True):
        assert [(o.topic, o.key) for o in have] == [(o.topic, o.key) for o in want]
        for w, h in zip(want, have, strict=True):
            a, b = w.record.to_avro(), h.record.to_avro()
            assert a.keys() == b.keys()
            for key, value in a.items():
                if isinstance(value, float):
                    assert b[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
                elif key != "components":
                    assert b[key] == value, key
            if w.topic == "margin-status":
                states.add(a["state"])
    assert {"HEALTHY", "MARGIN_CALL", "LIQUIDATION"} <= states, states
    assert any(o.topic == "insurance-claims" for out in got for o in out), "the fee comes first"
    for account, record in one.records.items():
        assert wave.records[account].state == record.state
        assert wave.records[account].status_sequence == record.status_sequence
