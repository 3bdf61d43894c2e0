"""A partition whose market broadcast lags: an account input stamped more than
``status.max_market_lag_s`` after the partition's latest market update finds every mark STALE,
its status says so, and no liquidation order, claim or call is made on those old marks."""

from __future__ import annotations

from datetime import timedelta

from streams import records as r
from streams.accounts.outputs import InputRef
from streams.market.state import MarketState
from tests.streams.test_validation import T0, _deposit, _fill, _partition

LAG_S = MarketState().params.status.max_market_lag_s


def _outputs(after_s: float) -> list[r.Record]:
    """A thin account's leveraged buy, stamped ``after_s`` after the partition's last market
    update: what the partition emits."""
    proc = _partition()
    proc.on_transfer(_deposit(account="y", transfer_id="dy", amount=1_000.0), InputRef("c", 0, 5))
    fill = _fill(account="y", fill_id="fy", qty=1.0, fee=0.0, ts=T0 + timedelta(seconds=after_s))
    return [o.record for o in proc.on_fill(fill, InputRef("fills", 0, 6))]


def test_an_input_far_ahead_of_the_market_finds_every_mark_stale_and_no_order_goes_out() -> None:
    late = _outputs(LAG_S + 30)
    status = next(x for x in late if isinstance(x, r.MarginStatus))
    assert status.stale_underlyings == ["BTC", "USDC"]
    assert status.state.value in ("LIQUIDATION", "BANKRUPT")
    assert not [x for x in late if isinstance(x, r.LiquidationOrder | r.InsuranceClaim)]


def test_the_same_input_within_the_lag_is_acted_on() -> None:
    timely = _outputs(LAG_S - 30)
    status = next(x for x in timely if isinstance(x, r.MarginStatus))
    assert status.stale_underlyings == []
    assert [x for x in timely if isinstance(x, r.LiquidationOrder | r.InsuranceClaim)]
