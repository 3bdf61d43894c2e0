"""The portfolio record: fills move positions, entries, PnL and cash; replays are caught."""

from __future__ import annotations

import pytest

from engine.instruments import parse_instrument
from streams.accounts.portfolio import PortfolioRecord, apply_fill

PERP = parse_instrument("BTC-PERPETUAL")
INV = parse_instrument("BTC-PERPETUAL-INV")
CALL = parse_instrument("BTC-27DEC26-100000-C")
SPOT = parse_instrument("BTC")


def test_growing_then_reducing_a_linear_position() -> None:
    r = PortfolioRecord("a")
    apply_fill(r, PERP, 1.0, 100.0, 0.1)
    apply_fill(r, PERP, 1.0, 110.0, 0.1)
    assert r.positions["BTC-PERPETUAL"].entry == pytest.approx(105.0)
    effect = apply_fill(r, PERP, -1.5, 120.0, 0.0)
    assert effect.realised_usd == pytest.approx(1.5 * 15.0)
    assert r.positions["BTC-PERPETUAL"].qty == pytest.approx(0.5)
    assert r.collateral["USD"] == pytest.approx(22.5 - 0.2)
    flip = apply_fill(r, PERP, -1.0, 100.0, 0.0)
    assert flip.realised_usd == pytest.approx(0.5 * -5.0)
    assert r.positions["BTC-PERPETUAL"].qty == pytest.approx(-0.5)
    assert r.positions["BTC-PERPETUAL"].entry == 100.0


def test_inverse_pnl_is_paid_in_the_coin_with_harmonic_entries() -> None:
    r = PortfolioRecord("a")
    apply_fill(r, INV, 10_000.0, 80_000.0, 0.0)
    apply_fill(r, INV, 10_000.0, 120_000.0, 0.0)
    entry = r.positions["BTC-PERPETUAL-INV"].entry
    assert entry == pytest.approx(20_000 / (10_000 / 80_000 + 10_000 / 120_000))
    apply_fill(r, INV, -20_000.0, 100_000.0, 0.0)
    assert "BTC-PERPETUAL-INV" not in r.positions
    assert r.collateral["BTC"] == pytest.approx(20_000 * (1 / entry - 1 / 100_000))


def test_option_premium_and_spot_trades_move_cash() -> None:
    r = PortfolioRecord("a")
    apply_fill(r, CALL, -2.0, 3_000.0, 1.0)
    assert r.collateral["USD"] == pytest.approx(6_000.0 - 1.0)
    apply_fill(r, SPOT, 0.5, 100_000.0, 0.0)
    assert r.collateral["BTC"] == 0.5
    assert r.collateral["USD"] == pytest.approx(6_000.0 - 1.0 - 50_000.0)


def test_replays_are_recognised_and_the_record_round_trips() -> None:
    r = PortfolioRecord("a")
    assert r.already_applied("fills", 5, "f1") is None
    r.mark_applied("fills", 5, "f1")
    assert r.already_applied("fills", 5, "f2") == "offset"
    assert r.already_applied("fills", 9, "f1") == "duplicate"
    apply_fill(r, PERP, 1.0, 100.0, 0.0)
    assert PortfolioRecord.from_dict(r.to_dict()) == r
