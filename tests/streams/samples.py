"""One valid record per topic (SAMPLES), and every record type with its topic (ALL_SAMPLES)."""

from __future__ import annotations

from datetime import UTC, datetime

from streams import records as r

TS = datetime(2026, 11, 24, 8, 0, 0, 123000, tzinfo=UTC)
DEPTH = r.BookDepth(
    underlying="BTC", mid=100_000.0, bps=[10.0, 50.0], bid=[1e6, 5e6], ask=[1e6, 4e6], ts=TS
)
VOL = r.VolSurfaceRecord(
    underlying="BTC",
    expiries=[0.1, 0.5],
    log_moneyness=[-0.2, 0.0, 0.2],
    vols=[[0.7, 0.6, 0.65], [0.65, 0.55, 0.6]],
    ts=TS,
)
INSTRUMENT = r.InstrumentRecord(
    name="BTC-27DEC26-100000-C",
    kind="OPTION",
    underlying="BTC",
    expiry=datetime(2026, 12, 27, 8, tzinfo=UTC),
    strike=100_000.0,
    option_type="CALL",
    state="SETTLED",  # (the fields instrument v2 added set: the codec's evolution tests)
    settlement_price=101_234.5,
    ts=TS,
)
PARAMS = r.RiskParamsRecord(name="default", version=2, params_json='{"version": 2}', ts=TS)

SAMPLES: dict[str, r.Record] = {
    "fills": r.Fill(
        fill_id="f-1",
        account="acct-1",
        sub_account="desk-a",
        isolated=True,
        instrument="BTC-PERPETUAL",
        side="SELL",
        qty=1.5,
        price=100_010.5,
        fee=0.75,
        liquidity="MAKER",
        order_id="o-9",
        ts=TS,
    ),
    "collateral": r.CollateralTransfer(
        transfer_id="t-1",
        account="acct-1",
        sub_account="desk-b",
        isolated=True,
        asset="USDC",
        amount=-2500.0,
        kind="WITHDRAWAL",
        chain="ethereum",
        confirmations=12,
        ts=TS,
    ),
    "oracle-prices": r.OraclePrice(
        source="deribit", underlying="BTC", price=100_000.0, weight=2.0, ts=TS
    ),
    "book-depth": DEPTH,
    "vol-surfaces": VOL,
    "instruments": INSTRUMENT,
    "risk-params": PARAMS,
    "margin-status": r.MarginStatus(
        status_id="s-1",
        account="acct-1",
        state="MARGIN_CALL",
        equity=10.0,
        equity_mm=9.0,
        equity_im=8.5,
        im=12.0,
        mm=9.0,
        ratio_mm=None,
        components=[
            r.UnderlyingComponent(
                underlying="BTC",
                worst_loss=10.0,
                directional=-9.0,
                two_sided=1.0,
                contingencies=1.5,
                short_option=0.5,
                delta=0.5,
                basis=0.5,
                liquidity_addon=0.1,
                delta_notional=-50.0,
            )
        ],
        directional_total=9.0,
        scenario_requirement=11.5,
        es99=7.0,
        var99=5.0,
        liquidity_addon=0.1,
        haircuts={"USDC": 0.02, "BTC": 0.11},
        sub_accounts={"desk-a": 3.0},
        params_version="default@1",
        psr={"BTC": 0.2},
        stale_underlyings=["ETH"],
        reason="FILL",
        input_topic="spma.fills",
        input_partition=3,
        input_offset=42,
        ts=TS,
    ),
    "margin-calls": r.MarginCall(
        call_id="c-1",
        account="acct-1",
        amount=3.5,
        equity_im=8.5,
        im=12.0,
        deadline=TS,
        sequence=1,
        state="LIQUIDATION",
        ts=TS,
    ),
    "liquidations": r.LiquidationOrder(
        order_id="l-1",
        account="acct-1",
        instrument="BTC",
        side="SELL",
        qty=0.1,
        limit_price=95_000.0,
        reason="MM_BREACH",
        sequence=0,
        input_topic="spma.market-broadcast",
        input_partition=2,
        input_offset=77,
        ts=TS,
    ),
    "insurance-fund": r.InsuranceFundEvent(
        event_id="i-1",
        currency="USD",
        kind="FEE",
        amount=5.0,
        balance_after=1_000_005.0,
        account="acct-1",
        ts=TS,
    ),
    "adl": r.AdlOrder(
        adl_id="d-1",
        account="acct-2",
        instrument="BTC-PERPETUAL",
        side="SELL",
        qty=0.5,
        price=90_000.0,
        counterparty_account="acct-1",
        amount=125.5,
        claim_id="k-1",
        ts=TS,
    ),
    "solvency-proofs": r.SolvencyProof(
        epoch=7,
        root_hash="ab" * 32,
        total_liabilities_cents=10**12,
        account_count=100,
        partition=None,
        ts=TS,
    ),
    "dlq": r.DlqRecord(
        topic="spma.fills",
        partition=1,
        offset=9,
        key=b"acct-1",
        value=b"\x00\x01garbage",
        reason="BAD_MAGIC",
        detail="magic byte 0x01",
        ts=TS,
    ),
    "market-broadcast": r.MarketUpdate(
        update_id="m-1",
        kind="VOL",
        underlying="BTC",
        vol=VOL,
        depth=DEPTH,
        instrument=INSTRUMENT,
        params=PARAMS,
        seq=5,
        ts=TS,
    ),
    "insurance-claims": r.InsuranceClaim(
        claim_id="k-1",
        account="acct-1",
        deficit=12.5,
        payouts_received=40.0,
        positions=[
            r.ClaimPosition(instrument="BTC-PERPETUAL", qty=-2.0, mark=90_000.0, unit_value=1.0)
        ],
        ts=TS,
    ),
}

ADL_CANDIDATE = r.AdlCandidate(
    account="acct-3", instrument="BTC-PERPETUAL", qty=-2.0, rank_score=3.25, partition=3, ts=TS
)

ALL_SAMPLES: list[tuple[str, r.Record]] = [
    *SAMPLES.items(),
    ("insurance-claims", ADL_CANDIDATE),
    (
        "insurance-claims",
        r.LiquidationFee(fee_id="fee-1", account="acct-1", amount=4.5, fill_id="f-9", ts=TS),
    ),
    (
        "market-broadcast",
        r.MarketUpdate(
            update_id="m-2",
            kind="MARK",
            underlying="ETH",
            mark=3_000.0,
            stale=True,
            ewma_vol=0.7,
            psr=0.12,
            seq=6,
            ts=TS,
        ),
    ),
]
"""Every record type (the claims topic carries two) and a MARK broadcast beside the full one."""


def deposit(
    account: str, amount: float, ts: datetime, transfer_id: str | None = None, **extra: object
) -> tuple[str, str, r.Record]:
    """A USDC deposit as a (topic, key, record) input, keyed by its account."""
    transfer = r.CollateralTransfer(
        transfer_id=transfer_id or f"dep-{account}-{ts.timestamp()}",
        account=account,
        asset="USDC",
        amount=amount,
        kind="DEPOSIT",
        ts=ts,
        **extra,  # type: ignore[arg-type]
    )
    return ("collateral", account, transfer)


def perpetual_market(ts: datetime = TS) -> list[r.MarketUpdate]:
    """What a market agent broadcasts for BTC-PERPETUAL listed and two sources quoting BTC at
    100,000 and USDC at 1."""
    from streams.market.state import MarketState

    agent = MarketState()
    perp = r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=ts)
    updates = [agent.on_instrument(perp, "i")]
    for source in ("a", "b"):
        for und, price in (("BTC", 100_000.0), ("USDC", 1.0)):
            quote = r.OraclePrice(source=source, underlying=und, price=price, ts=ts)
            updates.append(agent.on_price(quote, f"{source}{und}"))
    return [u for u in updates if u is not None]


def expired_listing(ts: datetime) -> r.InstrumentRecord:
    """A listing sent at ``ts`` of an option that expired in 2019 (EXPIRED_INSTRUMENT)."""
    return r.InstrumentRecord(
        name="BTC-27DEC19-50000-C",
        kind="OPTION",
        underlying="BTC",
        expiry=datetime(2019, 12, 27, 8, tzinfo=UTC),
        strike=50_000.0,
        option_type="CALL",
        ts=ts,
    )
