"""A worker margining with Derive's PMRM_2: a risk-params set selecting ``derive-pmrm2`` on the
risk-params topic, and the status of an account equals the offline figure (`spma margin
--preset derive-pmrm2` on the same portfolio and market)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.offline import margin_from_mappings
from engine.params import RiskParams
from streams import records as r
from tests.streams.samples import deposit
from tests.streams.worker_harness import Collector, running

pytestmark = [pytest.mark.broker, pytest.mark.slow]
PARTITIONS = 2


def _oracle(ts: datetime) -> list[tuple[str, str, r.Record]]:
    """BTC at 100,000 and USDC at 1, each from enough sources."""
    return [
        ("oracle-prices", und, r.OraclePrice(source=s, underlying=und, price=px, weight=1.0, ts=ts))
        for und, px in (("BTC", 100_000.0), ("USDC", 1.0))
        for s in ("deribit", "binance", "chainlink")
    ]


def _derive_params(ts: datetime) -> tuple[str, str, r.Record]:
    """The derive-pmrm2 preset as the live set, version 2."""
    body = RiskParams.preset("derive-pmrm2").model_dump(mode="json") | {
        "name": "live",
        "version": 2,
    }
    record = r.RiskParamsRecord(name="live", version=2, params_json=json.dumps(body), ts=ts)
    return ("risk-params", "live", record)


def _statuses(c: Collector) -> list[r.MarginStatus]:
    return [s for s in c.decoded("margin-status") if s.im > 0]  # type: ignore[misc]


def test_a_worker_margins_with_derives_model(kafka_bootstrap: str, tmp_path: Path) -> None:
    with running(kafka_bootstrap, tmp_path, partitions=PARTITIONS) as h:
        out = h.collect(("margin-status", "market-broadcast"))
        t0 = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(seconds=120)
        perp = r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=t0)
        h.send([("instruments", "BTC-PERPETUAL", perp), _derive_params(t0)])
        h.send(_oracle(t0))
        out.wait(lambda c: len(c.records["market-broadcast"]) >= PARTITIONS * 3, what="the market")
        fill = r.Fill(
            fill_id="f1",
            account="trader",
            instrument="BTC-PERPETUAL",
            side="BUY",
            qty=1.0,
            price=99_000.0,
            liquidity="TAKER",
            ts=t0,
        )
        h.send([deposit("trader", 50_000.0, t0, "d1"), ("fills", "trader", fill)])
        out.wait(
            lambda c: any(s.params_version == "live@2" for s in _statuses(c)),
            what="the account's status under the Derive set",
        )
        status = [s for s in _statuses(out) if s.params_version == "live@2"][-1]
    offline = margin_from_mappings(
        {
            "account": "trader",
            "collateral": {"USDC": 50_000.0},
            "positions": [{"instrument": "BTC-PERPETUAL", "qty": 1.0, "entry_price": 99_000.0}],
        },
        {
            "as_of": t0.isoformat(),
            "underlyings": {"BTC": {"mark": 100_000.0, "asset_class": "major"}},
            "assets": {"USDC": {"price": 1.0, "asset_class": "stablecoin"}},
        },
        RiskParams.preset("derive-pmrm2"),
    )
    assert status.equity == pytest.approx(offline.equity, rel=1e-9)
    assert status.im == pytest.approx(offline.im, rel=1e-9)
    assert status.mm == pytest.approx(offline.mm, rel=1e-9)
    assert status.state.value == offline.state and status.es99 == 0.0
