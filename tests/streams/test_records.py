"""The record models: value validation, UTC millisecond timestamps, frozen, shared enums."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from engine.instruments import InstrumentKind
from engine.insurance import FundEventKind
from engine.states import AccountState
from streams import records as r
from tests.streams.samples import ALL_SAMPLES, SAMPLES, TS

ROOT = Path(__file__).resolve().parents[2]


def _with(topic: str, **changes: Any) -> Any:
    """The sample of a topic with some fields changed, validated again."""
    sample = SAMPLES[topic]
    return type(sample).model_validate(sample.model_dump() | changes)


@pytest.mark.parametrize(
    ("topic", "changes", "field"),
    [
        ("fills", {"qty": 0.0}, "qty"),
        ("fills", {"qty": -1.0}, "qty"),
        ("fills", {"price": 0.0}, "price"),
        ("fills", {"price": -5.0}, "price"),
        ("fills", {"price": math.nan}, "price"),
        ("fills", {"qty": math.inf}, "qty"),
        ("fills", {"fee": math.nan}, "fee"),
        ("fills", {"fill_id": ""}, "fill_id"),
        ("fills", {"side": "HOLD"}, "side"),
        ("fills", {"liquidity": "RPI"}, "liquidity"),
        ("fills", {"ts": datetime(2026, 1, 1)}, "ts"),
        ("collateral", {"amount": 0.0}, "amount"),
        ("collateral", {"amount": math.nan}, "amount"),
        ("collateral", {"amount": -math.inf}, "amount"),
        ("collateral", {"confirmations": -1}, "confirmations"),
        ("collateral", {"kind": "GIFT"}, "kind"),
        ("oracle-prices", {"price": 0.0}, "price"),
        ("oracle-prices", {"weight": 0.0}, "weight"),
        ("oracle-prices", {"weight": -1.0}, "weight"),
        ("book-depth", {"mid": 0.0}, "mid"),
        ("book-depth", {"bid": [-1.0, 5e6]}, "bid"),
        ("book-depth", {"ask": [4e6, 1e6]}, "ask"),
        ("book-depth", {"bid": [1e6]}, "bid"),
        ("book-depth", {"bps": [50.0, 10.0]}, "bps"),
        ("book-depth", {"bps": []}, "bps"),
        ("vol-surfaces", {"vols": [[0.7, 0.0, 0.65], [0.65, 0.55, 0.6]]}, "vols"),
        ("vol-surfaces", {"vols": [[0.7, math.nan, 0.6], [0.6, 0.5, 0.6]]}, "vols"),
        ("vol-surfaces", {"vols": [[0.7, 0.6], [0.65, 0.55, 0.6]]}, "vols"),
        ("vol-surfaces", {"vols": [[0.7, 0.6, 0.65]]}, "vols"),
        ("vol-surfaces", {"expiries": [0.5, 0.1]}, "expiries"),
        ("vol-surfaces", {"expiries": [0.0, 0.5]}, "expiries"),
        ("vol-surfaces", {"log_moneyness": [0.0, 0.0, 0.2]}, "log_moneyness"),
        ("instruments", {"strike": None}, "strike"),
        ("instruments", {"strike": -1.0}, "strike"),
        ("instruments", {"contract_size": 0.0}, "contract_size"),
        ("instruments", {"kind": "SWAP"}, "kind"),
        ("risk-params", {"version": 0}, "version"),
        ("margin-status", {"im": -1.0}, "im"),
        ("margin-status", {"ratio_mm": math.inf}, "ratio_mm"),
        ("margin-status", {"haircuts": {"BTC": math.nan}}, "haircuts"),
        ("margin-status", {"state": "ZOMBIE"}, "state"),
        ("margin-calls", {"amount": 0.0}, "amount"),
        ("margin-calls", {"sequence": 0}, "sequence"),
        ("liquidations", {"qty": 0.0}, "qty"),
        ("liquidations", {"sequence": 2**31}, "sequence"),
        ("liquidations", {"input_offset": -1}, "input_offset"),
        ("collateral", {"confirmations": 2**31}, "confirmations"),
        ("dlq", {"offset": 2**63}, "offset"),
        ("solvency-proofs", {"epoch": -1}, "epoch"),
        ("liquidations", {"limit_price": -1.0}, "limit_price"),
        ("insurance-fund", {"amount": -1.0}, "amount"),
        ("insurance-fund", {"kind": "GIFT"}, "kind"),
        ("adl", {"price": 0.0}, "price"),
        ("solvency-proofs", {"root_hash": "XYZ"}, "root_hash"),
        ("solvency-proofs", {"total_liabilities_cents": -1}, "total_liabilities_cents"),
        ("dlq", {"reason": "BORED"}, "reason"),
        ("market-broadcast", {"vol": None}, "vol"),
        ("insurance-claims", {"deficit": 0.0}, "deficit"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(
    topic: str, changes: dict[str, Any], field: str
) -> None:
    """Each rule of the models rejects a bad value and names the field."""
    with pytest.raises(ValidationError) as err:
        _with(topic, **changes)
    assert field in str(err.value)


def test_instrument_kinds_need_their_terms() -> None:
    """Futures need an expiry, options strike/type/expiry; perpetuals need neither; a settlement
    needs its price, which only a settlement carries."""
    listed = {"state": "LISTED", "settlement_price": None}
    future = _with("instruments", kind="FUTURE", strike=None, option_type=None, **listed)
    assert future.kind is InstrumentKind.FUTURE
    with pytest.raises(ValidationError, match="expiry"):
        _with("instruments", kind="FUTURE", expiry=None, strike=None, option_type=None, **listed)
    perp = _with(
        "instruments", kind="PERPETUAL", expiry=None, strike=None, option_type=None, **listed
    )
    assert perp.expiry is None and perp.settlement == "USD" and not perp.inverse
    with pytest.raises(ValidationError, match="settlement_price"):
        _with("instruments", settlement_price=None)  # SETTLED without its price
    with pytest.raises(ValidationError, match="settlement_price"):
        _with("instruments", state="EXPIRED")  # a price without the settlement


def test_adl_candidate_and_market_update_rules() -> None:
    """ADL candidates are non-flat and finite; a broadcast carries its kind's payload."""
    with pytest.raises(ValidationError, match="qty"):
        r.AdlCandidate(account="a", instrument="X", qty=0.0, rank_score=1.0, ts=TS)
    with pytest.raises(ValidationError, match="rank_score"):
        r.AdlCandidate(account="a", instrument="X", qty=1.0, rank_score=math.nan, ts=TS)
    with pytest.raises(ValidationError, match="mark"):
        r.MarketUpdate(update_id="u", kind="MARK", underlying="BTC", seq=1, ts=TS)


def test_timestamps_become_utc_milliseconds() -> None:
    """Aware timestamps are normalised to UTC milliseconds; naive ones are refused."""
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2026, 11, 24, 17, 0, 0, 123456, tzinfo=tokyo)
    fill = _with("fills", ts=local)
    assert fill.ts == datetime(2026, 11, 24, 8, 0, 0, 123000, tzinfo=UTC)
    assert fill.ts.tzinfo is UTC
    status = _with("margin-calls", deadline=local)
    assert status.deadline.tzinfo is UTC and status.deadline.microsecond == 123000
    now = r.utc_now()
    assert now.tzinfo is UTC and now.microsecond % 1000 == 0


def test_models_are_frozen_and_convert_to_avro_mappings() -> None:
    """Models are immutable and dump to what fastavro writes."""
    fill = SAMPLES["fills"]
    assert isinstance(fill, r.Fill)
    with pytest.raises(ValidationError):
        fill.qty = 2.0  # type: ignore[misc]  # the point: a frozen model refuses assignment
    data = fill.to_avro()
    assert data["side"] == "SELL" and data["ts"] == TS and data["order_id"] == "o-9"
    assert fill.signed_qty == -1.5
    proof = SAMPLES["solvency-proofs"]
    assert isinstance(proof, r.SolvencyProof)
    assert proof.total_liabilities == 10**10


def test_enums_are_the_engines_own() -> None:
    """The records use the engine's enums, not copies."""
    assert r.AccountState is AccountState and r.FundEventKind is FundEventKind
    assert r.InstrumentKind is InstrumentKind
    status = SAMPLES["margin-status"]
    assert isinstance(status, r.MarginStatus) and status.state is AccountState.MARGIN_CALL


def test_defaults_of_the_evolved_fields() -> None:
    """Fields added by v2 schemas default as their schemas say."""
    call = r.MarginCall(
        call_id="c", account="a", amount=1.0, equity_im=1.0, im=2.0, deadline=TS, sequence=1, ts=TS
    )
    assert call.state is AccountState.MARGIN_CALL
    order = SAMPLES["liquidations"].model_copy(
        update={"input_topic": None, "input_partition": None, "input_offset": None}
    )
    assert isinstance(order, r.LiquidationOrder) and order.input_topic is None


def test_every_sample_is_valid_again() -> None:
    """The shared samples validate (a guard for the other tests)."""
    for _, record in ALL_SAMPLES:
        assert type(record).model_validate(record.model_dump()) == record


def test_records_import_without_kafka() -> None:
    """The models and codec errors import with no Kafka client or Faust."""
    code = (
        "import sys; sys.modules['confluent_kafka'] = None; sys.modules['faust'] = None; "
        "import streams.records, streams.codec.errors, streams.topics.catalog; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
