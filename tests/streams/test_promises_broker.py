"""Three promises on a live worker: isolation whatever the inputs' order, parameter versions that
only move forward, and proofs for every epoch kept.

Each test reproduces, on the session's broker and with a real worker process, a sequence that
once broke the promise: the isolated flag riding only on a sub-account's first deposit with its
first fill arriving first (in the same batch, and in the next); parameter version 3 published
after version 4, version 4 again, and a record whose version differs from its JSON's; and
`spma prove --from-stream --epoch N` for each of three published epochs. These run on Apache
Kafka and, in the Tansu lane, on Tansu.
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
from tests.streams.worker_harness import Collector, Harness, operator_tools, running

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.tansu_lane]
SECRET_HEX = "0badc0ffee0badc0ffee0badc0ffee00"
PARTITIONS = 2
PERP = "BTC-PERPETUAL"


def _market(ts: datetime, price: float) -> list[tuple[str, str, r.Record]]:
    """BTC from three sources and USDC from two, at one time."""
    return [
        ("oracle-prices", und, r.OraclePrice(source=s, underlying=und, price=px, weight=1.0, ts=ts))
        for und, px, sources in (("BTC", price, 3), ("USDC", 1.0, 2))
        for s in ("deribit", "binance", "chainlink")[:sources]
    ]


def _params(
    version: int, ts: datetime, inside: int | None = None, **changes: object
) -> tuple[str, str, r.Record]:
    """A 'live' parameter set; ``inside`` puts another version in its JSON than on the record."""
    body = RiskParams(name="live", version=inside or version).model_dump(mode="json") | changes
    record = r.RiskParamsRecord(name="live", version=version, params_json=json.dumps(body), ts=ts)
    return ("risk-params", "live", record)


def _fill(fid: str, account: str, ts: datetime, **kw: object) -> tuple[str, str, r.Record]:
    fill = r.Fill(
        fill_id=fid,
        account=account,
        instrument=PERP,
        side="BUY",
        qty=1.0,
        price=100_000.0,
        liquidity="TAKER",
        ts=ts,
        **kw,  # type: ignore[arg-type]
    )
    return ("fills", account, fill)


def _statuses(c: Collector, account: str, sub: str | None = None) -> list[r.MarginStatus]:
    return [
        s
        for s in c.decoded("margin-status")
        if isinstance(s, r.MarginStatus) and s.account == account and s.sub_account == sub
    ]


def _open_market(
    h: Harness, out: Collector, t0: datetime, *extra: tuple[str, str, r.Record]
) -> None:
    """The perpetual, any extra market inputs, and a first BTC and USDC mark on every partition."""
    perp = r.InstrumentRecord(name=PERP, kind="PERPETUAL", underlying="BTC", ts=t0)
    h.send([("instruments", PERP, perp), *extra])
    h.send(_market(t0, 100_000.0))
    want = PARTITIONS * (3 + len(extra))
    out.wait(lambda c: len(c.records["market-broadcast"]) >= want, what="the market")


def _start() -> datetime:
    return datetime.now(tz=UTC).replace(microsecond=0) - timedelta(seconds=240)


@pytest.mark.parametrize("batched", ["same batch", "next batch"])
def test_an_isolated_sub_accounts_loss_stays_its_own_when_its_fill_arrives_first(
    kafka_bootstrap: str, tmp_path: Path, batched: str
) -> None:
    """The flag rides only on the sub-account's first deposit; its first fill, stamped a moment
    later, is produced first (another topic), in the same batch as the deposit or ahead of it.
    When BTC drops 20%, the master's equity stays exactly its own and the sub-account's loss is
    its own, in its own status."""
    with running(kafka_bootstrap, tmp_path, partitions=PARTITIONS) as h:
        out = h.collect(("margin-status", "market-broadcast", "dlq"))
        t0 = _start()
        _open_market(h, out, t0)
        h.send([deposit("boss", 1_000_000.0, t0, "d-boss")])
        out.wait(lambda c: bool(_statuses(c, "boss")), what="the master's status")
        fill = _fill("f-iso", "boss", t0 + timedelta(milliseconds=5), sub_account="iso")
        iso_deposit = deposit("boss", 25_000.0, t0, "d-iso", sub_account="iso", isolated=True)
        if batched == "same batch":
            h.send([fill, iso_deposit])
        else:
            h.send([fill])
            out.wait(lambda c: len(_statuses(c, "boss")) >= 2, what="the fill's status")
            h.send([iso_deposit])
        out.wait(lambda c: bool(_statuses(c, "boss", "iso")), what="the sub-account's status")
        h.send(_market(t0 + timedelta(seconds=1), 80_000.0))
        out.wait(
            lambda c: any(s.equity < 10_000.0 for s in _statuses(c, "boss", "iso")),
            what="the sub-account's loss",
        )
        out.settle(quiet_s=2.0, timeout_s=60)
        assert not out.records["dlq"], out.decoded("dlq")
        iso = _statuses(out, "boss", "iso")[-1]
        assert iso.equity == pytest.approx(5_000.0, rel=1e-9)
        assert iso.state is r.AccountState.LIQUIDATION
        master = _statuses(out, "boss")[-1]
        assert master.equity == pytest.approx(1_000_000.0, rel=1e-12)
        assert master.state is r.AccountState.HEALTHY and master.im == 0.0


def test_parameter_versions_only_move_forward(kafka_bootstrap: str, tmp_path: Path) -> None:
    """live@4 in force; then live@3 (older) and live@4 again (equal) go to the dlq as
    STALE_PARAMS, a record saying live@5 whose JSON says live@6 as BAD_PARAMS; every status
    still names live@4. A worker started in place of the first refuses live@4 again (the
    versions outlive it), and live@5 applies."""
    with running(kafka_bootstrap, tmp_path, partitions=PARTITIONS) as h:
        out = h.collect(("margin-status", "market-broadcast", "dlq"))
        t0 = _start()
        _open_market(h, out, t0, _params(4, t0))
        h.send([deposit("p", 10_000.0, t0, "d1")])
        out.wait(lambda c: bool(_statuses(c, "p")), what="the first status")
        assert _statuses(out, "p")[-1].params_version == "live@4"
        h.send([_params(3, t0), _params(4, t0), _params(5, t0, inside=6)])
        out.wait(lambda c: len(c.records["dlq"]) >= 3, what="three refused parameter sets")
        reasons = [d.reason for d in out.decoded("dlq")]  # type: ignore[attr-defined]
        assert reasons == [
            r.DlqReason.STALE_PARAMS,
            r.DlqReason.STALE_PARAMS,
            r.DlqReason.BAD_PARAMS,
        ]
        details = [d.detail for d in out.decoded("dlq")]  # type: ignore[attr-defined]
        assert "live@3 is not newer than live@4" in details[0]
        assert "live@5" in details[2] and "live@6" in details[2]
        h.send([deposit("p", 1.0, t0 + timedelta(seconds=1), "d2")])
        out.wait(lambda c: len(_statuses(c, "p")) >= 2, what="the next status")
        assert {s.params_version for s in _statuses(out, "p")} == {"live@4"}
        # a new worker in place of the first one: the versions come back from its table
        h.stop()
        h.start_worker(tmp_path)
        h.send([deposit("p", 1.0, t0 + timedelta(seconds=2), "d-up")])  # the new worker is up
        out.wait(lambda c: len(_statuses(c, "p")) >= 3, 180, "the new worker's first status")
        h.send([_params(4, t0)])
        out.wait(lambda c: len(c.records["dlq"]) >= 4, 120, "live@4 refused after the restart")
        assert out.decoded("dlq")[-1].reason is r.DlqReason.STALE_PARAMS  # type: ignore[attr-defined]
        broadcasts = len(out.records["market-broadcast"])
        h.send([_params(5, t0)])
        out.wait(
            lambda c: len(c.records["market-broadcast"]) >= broadcasts + PARTITIONS,
            what="live@5 broadcast to every partition",
        )
        h.send([deposit("p", 1.0, t0 + timedelta(seconds=3), "d3")])
        out.wait(
            lambda c: any(s.params_version == "live@5" for s in _statuses(c, "p")),
            what="a status naming live@5",
        )


def test_every_published_epoch_kept_is_provable(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epochs of 60 s of event time; four are closed and published, and the worker keeps the
    leaves of three (SPMA_PROOF_EPOCHS_KEPT=3). `spma prove --epoch N` gives the account a proof
    for each of the three that `spma verify` accepts; the oldest, past the retention, fails
    with a message naming the epoch asked for."""
    monkeypatch.setenv("SPMA_POL_SECRET", SECRET_HEX)
    monkeypatch.setenv("SPMA_PROOF_EPOCHS_KEPT", "3")
    with running(kafka_bootstrap, tmp_path, partitions=PARTITIONS) as h:
        out = h.collect(("margin-status", "market-broadcast", "solvency-proofs"))
        t0 = _start().replace(second=0) - timedelta(minutes=2)
        _open_market(h, out, t0, _params(2, t0, proofs={"epoch_s": 60.0}))
        h.send([deposit("trader", 50_000.0, t0, "d1")])
        out.wait(lambda c: bool(_statuses(c, "trader")), what="the trader's status")
        for n in range(1, 5):  # four epoch changes: epochs e0..e3 closed, the oldest pruned
            h.send(_market(t0 + timedelta(seconds=60 * n + 1), 100_000.0 + n))
            if n == 1:
                h.send([deposit("trader", 1_000.0 * n, t0 + timedelta(seconds=60 * n + 2), "d2")])
            out.wait(
                lambda c, k=n: len(c.records["solvency-proofs"]) >= PARTITIONS * k,
                what=f"the roots of {n} epochs",
            )
        roots = [x for x in out.decoded("solvency-proofs") if isinstance(x, r.SolvencyProof)]
        epochs = sorted({x.epoch for x in roots})
        assert len(epochs) == 4
        out.close()
        app = operator_tools(h, monkeypatch)
        for epoch in epochs[1:]:  # the three kept
            proof_file = tmp_path / f"proof-{epoch}.json"
            args = ["prove", "trader", "--from-stream", "--epoch", str(epoch)]
            result = CliRunner().invoke(app, [*args, "--out", str(proof_file)])
            assert result.exit_code == 0, result.output
            words = result.stderr.split()
            assert words[-1] == str(epoch)
            root, total = words[words.index("root") + 1], words[words.index("total") + 1]
            published = sum(x.total_liabilities_cents for x in roots if x.epoch == epoch)
            assert int(total) == published
            checked = CliRunner().invoke(app, ["verify", str(proof_file), root, "--total", total])
            assert checked.exit_code == 0 and checked.stdout.startswith("OK"), checked.output
        oldest = CliRunner().invoke(
            app, ["prove", "trader", "--from-stream", "--epoch", str(epochs[0])]
        )
        assert oldest.exit_code == 2
        assert f"epoch {epochs[0]} is older than the epochs kept" in oldest.stderr
