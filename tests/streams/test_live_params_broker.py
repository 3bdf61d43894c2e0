"""Live risk parameters, sub-accounts and published proofs with a real worker process.

One worker on the embedded broker: statuses name the parameter version they used; a new version
on risk-params applies live (statuses name it, the margin follows it); a bad set goes to the dlq
with BAD_PARAMS and the old one stays in force; an isolated sub-account gets its own status; the
partitions publish their roots when event time enters a new epoch, and `spma prove --from-stream`
gives the account a path to the combined root that `spma verify` accepts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.params import RiskParams
from streams import records as r
from tests.streams.samples import deposit
from tests.streams.worker_harness import Collector, operator_tools, running

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SECRET_HEX = "0badc0ffee0badc0ffee0badc0ffee00"
PARTITIONS = 4


def _market(ts: datetime, price: float) -> list[tuple[str, str, r.Record]]:
    """BTC from three sources and USDC from two, at one time."""
    out: list[tuple[str, str, r.Record]] = []
    for und, px, sources in (("BTC", price, 3), ("USDC", 1.0, 2)):
        out += [
            (
                "oracle-prices",
                und,
                r.OraclePrice(source=s, underlying=und, price=px, weight=1.0, ts=ts),
            )
            for s in ("deribit", "binance", "chainlink")[:sources]
        ]
    return out


def _deposit(tid: str, amount: float, ts: datetime, **kw: object) -> tuple[str, str, r.Record]:
    return deposit("trader", amount, ts, tid, **kw)


def _params(version: int, ts: datetime, **changes: object) -> tuple[str, str, r.Record]:
    body = RiskParams(name="live", version=version).model_dump(mode="json") | changes
    record = r.RiskParamsRecord(name="live", version=version, params_json=json.dumps(body), ts=ts)
    return ("risk-params", "live", record)


def _statuses(c: Collector, sub: str | None = None) -> list[r.MarginStatus]:
    return [s for s in c.decoded("margin-status") if s.sub_account == sub]  # type: ignore[misc]


def test_live_params_sub_accounts_and_published_proofs(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPMA_POL_SECRET", SECRET_HEX)
    with running(kafka_bootstrap, tmp_path, partitions=PARTITIONS) as h:
        out = h.collect(("margin-status", "market-broadcast", "dlq", "solvency-proofs"))
        t0 = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(seconds=240)
        perp = r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=t0)
        # version 2 first: proofs every 60 s of event time, so the test can cross an epoch
        h.send([("instruments", "BTC-PERPETUAL", perp), _params(2, t0, proofs={"epoch_s": 60.0})])
        h.send(_market(t0, 100_000.0))
        out.wait(lambda c: len(c.records["market-broadcast"]) >= PARTITIONS * 4, what="the market")
        fill = r.Fill(
            fill_id="f1",
            account="trader",
            instrument="BTC-PERPETUAL",
            side="BUY",
            qty=1.0,
            price=100_000.0,
            liquidity="TAKER",
            ts=t0,
        )
        h.send([_deposit("d1", 50_000.0, t0), ("fills", "trader", fill)])
        # the inputs may race ahead of the broadcast on their partition: the account gets its
        # status once its market is there
        out.wait(lambda c: any(s.im > 0 for s in _statuses(c)), what="the master's status")
        h.send([_deposit("d-iso", 3_000.0, t0, sub_account="iso", isolated=True)])
        out.wait(lambda c: bool(_statuses(c, "iso")), what="the isolated sub-account's status")
        before = [s for s in _statuses(out) if s.im > 0][-1]
        assert before.params_version == "live@2"
        assert _statuses(out, "iso")[-1].account == "trader"
        assert {m.key for m in out.records["margin-status"]} == {b"trader", b"trader/iso"}
        assert _statuses(out)[-1].sub_accounts == {"iso": 0.0}
        # a new version applies live: BTC's PSR 16% -> 24%, the margin follows at once
        h.send([_params(3, t0, psr={"BTC": 0.24, "ETH": 0.18}, proofs={"epoch_s": 60.0})])
        h.send([_deposit("d2", 1.0, t0 + timedelta(seconds=1))])
        out.wait(
            lambda c: any(s.params_version == "live@3" for s in _statuses(c)),
            what="a status naming live@3",
        )
        after = [s for s in _statuses(out) if s.params_version == "live@3"][-1]
        assert after.im > before.im * 1.2
        assert after.psr["BTC"] == pytest.approx(0.24)
        # a bad set (a PSR of 150%) goes to the dlq with the reason; live@3 stays in force
        h.send([_params(4, t0, psr={"BTC": 1.5})])
        out.wait(lambda c: bool(c.records["dlq"]), what="the bad parameter set in the dlq")
        dlq = out.decoded("dlq")[-1]
        assert dlq.reason is r.DlqReason.BAD_PARAMS and "psr" in dlq.detail  # type: ignore[attr-defined]
        h.send([_deposit("d3", 1.0, t0 + timedelta(seconds=2))])
        out.wait(
            lambda c: len([s for s in _statuses(c) if s.params_version == "live@3"]) >= 2,
            what="the next status, still on live@3",
        )
        assert {s.params_version for s in out.decoded("margin-status")} <= {"live@2", "live@3"}
        # event time enters a later epoch: every partition publishes its root
        h.send(_market(t0 + timedelta(seconds=125), 100_000.0))
        out.wait(
            lambda c: len(c.records["solvency-proofs"]) >= PARTITIONS,
            what="every partition's root",
        )
        roots = out.decoded("solvency-proofs")
        epochs = {x.epoch for x in roots}  # type: ignore[attr-defined]
        assert len(epochs) == 1 and {x.partition for x in roots} == set(range(PARTITIONS))  # type: ignore[attr-defined]
        trader = [s for s in _statuses(out)][-1]
        total = sum(x.total_liabilities_cents for x in roots)  # type: ignore[attr-defined]
        assert total == round(trader.equity * 100) + 300_000  # trader and trader/iso
        out.close()
        # the operator's tool: the account's path to the combined root, checked offline
        app = operator_tools(h, monkeypatch)
        proof_file = tmp_path / "proof.json"
        result = CliRunner().invoke(
            app, ["prove", "trader", "--from-stream", "--publish", "--out", str(proof_file)]
        )
        assert result.exit_code == 0, result.output
        words = result.stderr.split()
        root = words[words.index("root") + 1]
        assert int(words[words.index("total") + 1]) == total
        checked = CliRunner().invoke(app, ["verify", str(proof_file), root, "--total", str(total)])
        assert checked.exit_code == 0 and checked.stdout.startswith("OK"), checked.output
        # the combined root is on the topic too (partition null), with the published total
        combined = [
            x
            for x in (
                h.codec.decode("solvency-proofs", m.value) for m in h.read(("solvency-proofs",))
            )
            if x.partition is None  # type: ignore[attr-defined]
        ]
        assert [(x.root_hash, x.total_liabilities_cents, x.account_count) for x in combined] == [  # type: ignore[attr-defined]
            (root, total, 2)
        ]
        data = json.loads(proof_file.read_text())
        data["path"][0]["sibling_sum_cents"] += 1
        proof_file.write_text(json.dumps(data))
        tampered = CliRunner().invoke(app, ["verify", str(proof_file), root])
        assert tampered.exit_code == 1 and "FAILED" in tampered.stdout
