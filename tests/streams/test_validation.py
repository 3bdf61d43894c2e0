"""Account inputs checked at the edge (streams/accounts/validation.py), without Kafka: each rule
with an input just inside and one just outside its bound, the reason it gets, and nothing of a
refused input applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.params import InputParams, RiskParams
from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.processor import AccountProcessor
from streams.accounts.validation import check_asset, check_key, fill_notional
from streams.errors import InputRejected
from streams.market.state import MarketState
from streams.records import DlqReason
from tests.streams import samples

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)
EXPIRY = datetime(2026, 12, 25, 8, tzinfo=UTC)


def _partition(params: RiskParams | None = None) -> AccountProcessor:
    """A partition with BTC listed (perpetual, a December future and call), marked at 100,000
    by three sources, its book 2 M USD deep on each side, and account x funded."""
    agent = MarketState()
    proc = AccountProcessor(0, MarketState())
    offset = 0

    def broadcast(update: r.MarketUpdate | None) -> None:
        nonlocal offset
        offset += 1
        if update is not None:
            proc.on_market(update, InputRef("mb", 0, offset))

    if params is not None:
        record = r.RiskParamsRecord(
            name=params.name, version=params.version, params_json=params.to_json(), ts=T0
        )
        broadcast(agent.on_params(record, "p"))
    listings = [
        r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=T0),
        r.InstrumentRecord(
            name="BTC-25DEC26", kind="FUTURE", underlying="BTC", expiry=EXPIRY, ts=T0
        ),
        r.InstrumentRecord(
            name="BTC-25DEC26-100000-C",
            kind="OPTION",
            underlying="BTC",
            expiry=EXPIRY,
            strike=100_000.0,
            option_type="CALL",
            ts=T0,
        ),
    ]
    for listing in listings:
        broadcast(agent.on_instrument(listing, listing.name))
    for source in ("a", "b", "c"):
        for und, px in (("BTC", 100_000.0), ("USDC", 1.0)):
            quote = r.OraclePrice(source=source, underlying=und, price=px, weight=1.0, ts=T0)
            broadcast(agent.on_price(quote, f"{source}-{und}"))
    depth = r.BookDepth(
        underlying="BTC", mid=100_000.0, bps=[10.0, 50.0], bid=[1e6, 2e6], ask=[1e6, 2e6], ts=T0
    )
    broadcast(agent.on_depth(depth, "d"))
    proc.on_transfer(_deposit(), InputRef("collateral", 0, 0))
    return proc


def _deposit(**changes: object) -> r.CollateralTransfer:
    values: dict[str, object] = dict(
        transfer_id="dep", account="x", asset="USDC", amount=1e6, kind="DEPOSIT", ts=T0
    )
    return r.CollateralTransfer.model_validate(values | changes)


def _fill(**changes: object) -> r.Fill:
    values: dict[str, object] = dict(
        fill_id="f1",
        account="x",
        instrument="BTC-PERPETUAL",
        side="BUY",
        qty=1.0,
        price=100_000.0,
        fee=10.0,
        liquidity="TAKER",
        ts=T0 + timedelta(seconds=1),
    )
    return r.Fill.model_validate(values | changes)


def _refused(proc: AccountProcessor, value: r.Fill | r.CollateralTransfer) -> DlqReason:
    """The reason an input is refused with; the partition's records unchanged."""
    before = {a: rec.to_dict() for a, rec in proc.records.items()}
    with pytest.raises(InputRejected) as err:
        if isinstance(value, r.Fill):
            proc.apply_fill(value, InputRef("fills", 0, 99))
        else:
            proc.apply_transfer(value, InputRef("collateral", 0, 99))
    assert {a: rec.to_dict() for a, rec in proc.records.items()} == before
    return err.value.reason


def test_the_key_must_name_the_body_s_account() -> None:
    check_key(b"x", "x")
    with pytest.raises(InputRejected) as err:
        check_key(None, "x")
    assert err.value.reason is DlqReason.NULL_KEY
    with pytest.raises(InputRejected) as err:
        check_key(b"y", "x")
    assert err.value.reason is DlqReason.KEY_MISMATCH


def test_a_valid_fill_passes_and_is_applied() -> None:
    proc = _partition()
    assert proc.apply_fill(_fill(), InputRef("fills", 0, 1)) is not None
    assert proc.records["x"].positions["BTC-PERPETUAL"].qty == 1.0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"fill_id": "f" * 129}, DlqReason.OUT_OF_RANGE),
        ({"order_id": "o" * 129}, DlqReason.OUT_OF_RANGE),
        ({"ts": T0 - timedelta(days=2)}, DlqReason.STALE_TIMESTAMP),
        ({"ts": datetime(1970, 1, 1, tzinfo=UTC)}, DlqReason.STALE_TIMESTAMP),
        ({"instrument": "BTC-NOTLISTED"}, DlqReason.UNKNOWN_INSTRUMENT),
        ({"instrument": "BTC-27DEC19-50000-C"}, DlqReason.EXPIRED_INSTRUMENT),
        ({"price": 1e30}, DlqReason.OUT_OF_RANGE),
        ({"price": 100_000.0 * 3.01}, DlqReason.OUT_OF_RANGE),
        ({"price": 100_000.0 / 3.01}, DlqReason.OUT_OF_RANGE),
        ({"qty": 1e30}, DlqReason.OUT_OF_RANGE),
        ({"qty": 1_001.0}, DlqReason.OUT_OF_RANGE),  # 100.1 M USD: over 50 x a 2 M book
        ({"fee": -1e12}, DlqReason.OUT_OF_RANGE),
        ({"fee": 5_002.0}, DlqReason.OUT_OF_RANGE),  # over 5% of 100,000 plus 1
        (
            {"instrument": "BTC-25DEC26-100000-C", "price": 300_001.0, "qty": 0.1},
            DlqReason.OUT_OF_RANGE,
        ),
    ],
)
def test_a_fill_beyond_a_bound_is_refused(changes: dict[str, object], reason: DlqReason) -> None:
    assert _refused(_partition(), _fill(**changes)) is reason


def test_bounds_just_inside_pass() -> None:
    proc = _partition()
    inside = [
        _fill(fill_id="i" * 128),
        _fill(fill_id="p1", price=100_000.0 * 2.99),
        _fill(fill_id="p2", price=100_000.0 / 2.99),
        _fill(fill_id="q", qty=999.0, fee=0.0),  # 99.9 M USD: within 50 x the 2 M book
        _fill(fill_id="fee", fee=5_000.0),
        _fill(fill_id="rebate", fee=-5_000.0),
        _fill(fill_id="old", ts=T0 - timedelta(hours=23)),
        _fill(fill_id="c", instrument="BTC-25DEC26-100000-C", price=5_000.0, qty=0.1),
    ]
    for offset, fill in enumerate(inside, start=1):
        assert proc.apply_fill(fill, InputRef("fills", 0, offset)) is not None, fill.fill_id


def test_an_expired_listed_future_is_refused_after_its_expiry() -> None:
    proc = _partition()
    late = _fill(instrument="BTC-25DEC26", ts=EXPIRY + timedelta(seconds=1))
    assert _refused(proc, late) is DlqReason.EXPIRED_INSTRUMENT
    assert proc.apply_fill(_fill(instrument="BTC-25DEC26"), InputRef("fills", 0, 1)) is not None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"asset": "usdc"}, DlqReason.UNKNOWN_ASSET),
        ({"asset": "U$DC"}, DlqReason.UNKNOWN_ASSET),
        ({"amount": 1e30}, DlqReason.OUT_OF_RANGE),
        ({"asset": "BTC", "amount": 10_001.0}, DlqReason.OUT_OF_RANGE),  # 1.0001 bn USD
        ({"transfer_id": "t" * 129}, DlqReason.OUT_OF_RANGE),
        ({"ts": T0 - timedelta(days=2)}, DlqReason.STALE_TIMESTAMP),
    ],
)
def test_a_transfer_beyond_a_bound_is_refused(
    changes: dict[str, object], reason: DlqReason
) -> None:
    assert _refused(_partition(), _deposit(**({"transfer_id": "t2"} | changes))) is reason


def test_a_collateral_symbol_is_upper_case_letters_and_digits() -> None:
    """(A symbol nobody prices yet is held for its market: tests/streams/test_holding.py.)"""
    assert check_asset_ok("SOL") and not check_asset_ok("sol") and not check_asset_ok("S")


def check_asset_ok(asset: str) -> bool:
    """True when the default symbol pattern takes the asset."""
    try:
        check_asset(asset, InputParams())
    except InputRejected:
        return False
    return True


def test_the_bounds_are_parameters() -> None:
    """A tighter set in force refuses what the default accepts."""
    tight = RiskParams(
        version=2,
        inputs=InputParams(
            max_notional_by_underlying={"BTC": 50_000.0}, max_fee_fraction=0.0, fee_floor_usd=0.0
        ),
    )
    proc = _partition(tight)
    assert _refused(proc, _fill(fee=0.0)) is DlqReason.OUT_OF_RANGE  # 100,000 USD notional
    assert _refused(proc, _fill(qty=0.1)) is DlqReason.OUT_OF_RANGE  # a fee of 10
    assert proc.apply_fill(_fill(qty=0.1, fee=0.0), InputRef("fills", 0, 1)) is not None


def test_notional_by_kind() -> None:
    market = _partition().market
    perp = market.instruments.get("BTC-PERPETUAL")
    call = market.instruments.get("BTC-25DEC26-100000-C")
    assert fill_notional(perp, -2.0, 100_000.0, 99_000.0) == 200_000.0
    assert fill_notional(call, 0.5, 4_000.0, 99_000.0) == 49_500.0


def test_the_market_agent_refuses_a_quote_above_the_cap_and_counts_outliers_by_source() -> None:
    agent = MarketState()
    for source, price in (("a", 100_000.0), ("b", 100_100.0)):
        quote = r.OraclePrice(source=source, underlying="BTC", price=price, ts=T0)
        agent.on_price(quote, source)
        assert agent.set_aside is None
    drifting = r.OraclePrice(source="c", underlying="BTC", price=110_000.0, ts=T0)
    agent.on_price(drifting, "c")
    assert agent.set_aside == ("BTC", "c")
    with pytest.raises(InputRejected) as err:
        agent.on_price(r.OraclePrice(source="d", underlying="BTC", price=1e30, ts=T0), "d")
    assert err.value.reason is DlqReason.OUT_OF_RANGE
    assert agent.marks["BTC"] == 100_000.0


def test_a_listing_already_expired_is_refused() -> None:
    listing = samples.expired_listing(T0)
    agent = MarketState()
    with pytest.raises(InputRejected) as err:
        agent.on_instrument(listing, "old")
    assert err.value.reason is DlqReason.EXPIRED_INSTRUMENT
    assert "BTC-27DEC19-50000-C" not in agent.instruments
