"""The pipeline on the session's broker (and on Tansu in its lane): real worker processes, real
topics, the Avro codec.

A scripted session (deposits, a hedged options book, a price path, a thinning book) must end with
margin-status values equal to what the engine computes offline for the same portfolio and market;
a BTC drop takes an account to MARGIN_CALL and a deposit brings it back; ids are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.market import market_to_mapping
from engine.offline import margin_from_mappings
from streams import records as r
from streams.accounts.portfolio import PortfolioRecord, apply_fill
from streams.market.state import MarketState
from streams.records import MarginStatus
from streams.tools.exchange import Exchange
from tests.streams.samples import deposit
from tests.streams.worker_harness import Collector, Harness, running

pytestmark = [pytest.mark.broker, pytest.mark.slow]
FIELDS = ("equity", "equity_mm", "equity_im", "im", "mm", "es99", "scenario_requirement")


def _replay(inputs: list[tuple[str, str, r.Record]], market: MarketState) -> dict[str, dict]:
    """Each account's final portfolio (offline JSON form), replayed from the inputs."""
    books: dict[str, PortfolioRecord] = {}
    for _topic, _, rec in inputs:
        if isinstance(rec, r.Fill):
            record = books.setdefault(rec.account, PortfolioRecord(rec.account))
            apply_fill(
                record, market.instruments.get(rec.instrument), rec.signed_qty, rec.price, rec.fee
            )
        elif isinstance(rec, r.CollateralTransfer):
            books.setdefault(rec.account, PortfolioRecord(rec.account)).add_collateral(
                rec.asset, rec.amount
            )
    return {
        a: {
            "account": a,
            "collateral": b.collateral,
            "positions": [
                {"instrument": n, "qty": p.qty, "entry_price": p.entry}
                for n, p in b.positions.items()
            ],
        }
        for a, b in books.items()
    }


@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.tansu_lane), 2])
def test_scripted_session_matches_the_offline_engine(
    kafka_bootstrap: str, tmp_path: Path, workers: int
) -> None:
    with running(kafka_bootstrap, tmp_path, workers=workers) as h:
        out = h.collect(("margin-status", "market-broadcast", "dlq"))
        ex = Exchange(datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=5))
        ex.list_instruments()
        ex.publish_market()
        # The listings and the first prices reach every partition before anyone trades, as on
        # an exchange. Sent with the rest, an account's deposit of a coin could meet another
        # coin's price of a minute later (its own 60 s of moves, on another partition, read first
        # by the other worker) before its coin's first price: held past inputs.hold_s on the
        # partition's mark clock, it went to the dlq, as the holding rule says it must.
        h.send(ex.inputs)
        out.wait(_everywhere(h, ex.inputs), 120, "the listings and first marks on every partition")
        first = len(ex.inputs)
        kinds = ex.open_accounts(24)
        for btc, depth, vol in ((0.97, 0.6, 1.2), (0.93, 0.3, 1.5), (0.95, 0.2, 1.4)):
            ex.tick(20_000)
            ex.move({"BTC": btc, "ETH": btc + 0.01, "SOL": btc - 0.01}, depth, vol)
        h.send(ex.inputs[first:])
        out.settle(quiet_s=6.0)
        final_ts = ex.tick()
        final = [deposit(a, 1.0, final_ts, f"final-{a}") for a in kinds]
        h.send(final)

        def last_statuses(c: Collector) -> dict[str, MarginStatus]:
            return {
                s.account: s
                for s in c.decoded("margin-status")  # type: ignore[misc]
                if s.ts == final_ts
            }  # type: ignore[attr-defined]

        out.wait(lambda c: len(last_statuses(c)) == len(kinds), 120, "every final status")
        assert not out.records["dlq"], [d.detail for d in out.decoded("dlq")]  # type: ignore[attr-defined]
        market = MarketState()
        for msg in sorted(
            (m for m in out.records["market-broadcast"] if m.partition == 0), key=lambda m: m.offset
        ):
            market.apply(h.codec.decode("market-broadcast", msg.value))  # type: ignore[arg-type]
        offline_market = market_to_mapping(market.snapshot())
        portfolios = _replay(ex.inputs + final, market)
        for account, status in last_statuses(out).items():
            expected = margin_from_mappings(portfolios[account], offline_market, market.params)
            for key in FIELDS:
                assert getattr(status, key) == pytest.approx(
                    getattr(expected, key), rel=1e-6, abs=1e-6
                ), (
                    account,
                    key,
                )
            assert status.state.value == expected.state
        ids = [s.status_id for s in out.decoded("margin-status")]  # type: ignore[attr-defined]
        if workers == 1:  # one worker, no rebalance: every status once
            assert len(ids) == len(set(ids))
        # Two workers may rebalance while inputs are in flight (the second joins when it is
        # up, on a loaded machine after the first has started): the new owner replays what was
        # not committed and re-sends its stored outputs, byte for byte with the same ids.
        by_id: dict[str, bytes | None] = {}
        for m in out.records["margin-status"]:
            sid = h.codec.decode("margin-status", m.value).status_id  # type: ignore[attr-defined]
            assert by_id.setdefault(sid, m.value) == m.value, f"{sid} sent with two contents"
        if workers == 1:
            _replay_gives_the_same_ids(h, out)
        out.close()


def _everywhere(h: Harness, inputs: list[tuple[str, str, r.Record]]) -> Callable[[Collector], bool]:
    """A wait's condition: every partition's market broadcast carries the inputs' listings and
    a mark of each listed underlying (so an account input that needs them and comes later meets
    them first, or is held and released by them before any later price)."""
    wanted = {
        (kind, name)
        for _, _, rec in inputs
        if isinstance(rec, r.InstrumentRecord)
        for kind, name in (
            (r.MarketUpdateKind.INSTRUMENT, rec.name),
            (r.MarketUpdateKind.MARK, rec.underlying),
        )
    }

    def everywhere(c: Collector) -> bool:
        seen: dict[int, set[tuple[r.MarketUpdateKind, str | None]]] = {}
        for m in c.records["market-broadcast"]:
            update = h.codec.decode("market-broadcast", m.value)
            assert isinstance(update, r.MarketUpdate)
            name = update.instrument.name if update.instrument else update.underlying
            seen.setdefault(m.partition, set()).add((update.kind, name))
        return all(wanted <= seen.get(p, set()) for p in range(h.settings.partitions))

    return everywhere


def _replay_gives_the_same_ids(h: Harness, out: Collector) -> None:
    """A fresh consumer group replays every input: an input's status has the same id again."""

    def by_input(statuses: list[r.Record]) -> dict[tuple[str, int, int, str], str]:
        return {
            (s.input_topic, s.input_partition, s.input_offset, s.account): s.status_id  # type: ignore[attr-defined]
            for s in statuses
        }

    first = by_input(out.decoded("margin-status"))
    seen = len(out.records["margin-status"])
    h.app_id += "-replay"
    h.start_worker(h.logs[0].parent)
    out.wait(lambda c: len(c.records["margin-status"]) > seen, timeout_s=90, what="the replay")
    out.settle(quiet_s=6.0)
    again = by_input(out.decoded("margin-status")[seen:])
    common = set(first) & set(again)
    assert len(common) >= len(first) // 4, (len(first), len(again), len(common))
    assert all(first[k] == again[k] for k in common)


def _btc_market(ts: datetime, price: float, sources: int = 3) -> list[tuple[str, str, r.Record]]:
    """BTC quotes from some sources, plus USDC, at one time."""
    quotes: list[tuple[str, str, r.Record]] = [
        (
            "oracle-prices",
            "BTC",
            r.OraclePrice(source=s, underlying="BTC", price=price, weight=1.0, ts=ts),
        )
        for s in ("deribit", "binance", "chainlink")[:sources]
    ]
    quotes += [
        (
            "oracle-prices",
            "USDC",
            r.OraclePrice(source=s, underlying="USDC", price=1.0, weight=1.0, ts=ts),
        )
        for s in ("deribit", "binance")
    ]
    return quotes


def _deposit(transfer_id: str, amount: float, ts: datetime) -> tuple[str, str, r.Record]:
    """A USDC deposit to the test trader."""
    return deposit("trader", amount, ts, transfer_id)


def _last_state(c: Collector) -> str | None:
    """State of the newest status."""
    statuses = c.decoded("margin-status")
    return statuses[-1].state.value if statuses else None  # type: ignore[attr-defined]


def test_margin_call_cycle_and_stale_oracle(kafka_bootstrap: str, tmp_path: Path) -> None:
    with running(kafka_bootstrap, tmp_path) as h:
        out = h.collect(
            ("margin-status", "margin-calls", "market-broadcast", "liquidations", "dlq")
        )
        t0 = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(seconds=120)
        perp = r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=t0)
        h.send([("instruments", "BTC-PERPETUAL", perp), *_btc_market(t0, 100_000.0)])
        out.wait(lambda c: len(c.records["market-broadcast"]) >= 8 * 3, what="the market")
        # collateral and fills are separate topics with no order between them: the deposit
        # first (as an exchange would have it), else the fill may meet an empty account
        h.send([_deposit("d1", 20_000.0, t0)])
        out.wait(
            lambda c: any(s.equity > 19_000 for s in c.decoded("margin-status")),  # type: ignore[attr-defined]
            what="the deposit's status",
        )
        h.send(
            [
                (
                    "fills",
                    "trader",
                    r.Fill(
                        fill_id="f1",
                        account="trader",
                        instrument="BTC-PERPETUAL",
                        side="BUY",
                        qty=1.0,
                        price=100_000.0,
                        liquidity="TAKER",
                        ts=t0,
                    ),
                ),
            ]
        )
        # the inputs may race ahead of the broadcast on their partition: the account gets its
        # status once its market is there
        out.wait(
            lambda c: any(
                s.im > 0 and s.equity > 19_000  # type: ignore[attr-defined]
                for s in c.decoded("margin-status")
            ),
            what="the position's status",
        )
        assert _last_state(out) == "HEALTHY"
        h.send(_btc_market(t0 + timedelta(seconds=1), 95_000.0))
        out.wait(lambda c: _last_state(c) == "MARGIN_CALL", what="MARGIN_CALL")
        out.wait(lambda c: len(c.records["margin-calls"]) >= 1, what="a call")
        out.poll(3.0)
        calls = out.decoded("margin-calls")
        status = out.decoded("margin-status")[-1]
        assert len(calls) == 1 and calls[0].sequence == 1  # type: ignore[attr-defined]
        assert calls[0].amount == pytest.approx(  # type: ignore[attr-defined]
            status.im - status.equity_im
        )  # type: ignore[attr-defined]
        # 61 s of test clock later (event time of the inputs), the call repeats
        h.send(_btc_market(t0 + timedelta(seconds=62), 95_000.0))
        out.wait(lambda c: len(c.records["margin-calls"]) >= 2, what="the repeated call")
        assert [c.sequence for c in out.decoded("margin-calls")] == [1, 2]  # type: ignore[attr-defined]
        # one source left: the mark is STALE and flagged; nothing is liquidated
        h.send(_btc_market(t0 + timedelta(seconds=70), 80_000.0, sources=1))

        def flagged(c: Collector) -> bool:
            return any(
                s.stale_underlyings == ["BTC"]  # type: ignore[attr-defined]
                for s in c.decoded("margin-status")
            )

        # the stale mark reaches the partition on its own topic; the next status carries it
        for n in range(10):
            h.send(
                [
                    _deposit(
                        f"tick-{n}",
                        1.0,
                        t0 + timedelta(seconds=71),
                    )
                ]
            )
            out.poll(3.0)
            if flagged(out):
                break
        out.wait(flagged, timeout_s=5, what="a stale flag")
        assert out.decoded("margin-status")[-1].equity > 10_000  # type: ignore[attr-defined]
        assert not out.records["liquidations"], (
            out.decoded("liquidations"),
            [
                (x.input_topic, x.state.value, x.equity_mm, x.mm, x.stale_underlyings, x.psr)  # type: ignore[attr-defined]
                for x in out.decoded("margin-status")
            ],
        )
        # a deposit brings it back to HEALTHY
        h.send(
            [
                _deposit(
                    "d3",
                    10_000.0,
                    t0 + timedelta(seconds=72),
                )
            ]
        )
        out.wait(lambda c: _last_state(c) == "HEALTHY", what="HEALTHY after the deposit")
        ids = [s.status_id for s in out.decoded("margin-status")]  # type: ignore[attr-defined]
        assert len(ids) == len(set(ids))
        out.close()
