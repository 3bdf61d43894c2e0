"""Operations on real worker processes: Prometheus metrics, the account view, the load generator.

- /metrics: the named metrics move when events flow (inputs by topic and outcome, latency,
  revaluations, outputs, accounts by state, the insurance fund), and a bad record is counted by
  reason;
- /accounts/{id} with two workers on 8 partitions: either worker gives the owner's answer, equal to
  the account's last margin-status; an unknown account is a 404 with a JSON error;
- `spma loadgen`: valid records at the asked rate on the partitions the view expects, and clean
  failures on bad arguments.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from infra.settings import Settings
from streams import records as r
from streams.agents.web import key_partitions
from streams.cli.main import app as cli
from streams.codec import codec_from_settings
from streams.kafka_io import drain
from streams.tools.exchange import Exchange
from streams.tools.loadgen import KINDS, LoadPlan, run_load
from streams.topics.admin import create_topics
from tests.streams.samples import deposit
from tests.streams.worker_harness import Collector, Harness, running

pytestmark = pytest.mark.broker
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(
    port: int, path: str, timeout_s: float = 10.0, token: str | None = None
) -> tuple[int, bytes]:
    """HTTP GET on a worker: status and body (error statuses too); 0 when nothing answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def _scrape(port: int) -> Samples:
    """Every sample of a worker's /metrics by (name, sorted labels)."""
    code, body = _get(port, "/metrics")
    assert code == 200, (code, body[:200])
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _wait_for(
    what: str,
    check: Callable[[], bool],
    timeout_s: float,
    h: Harness,
    why: Callable[[], str] = lambda: "",
) -> None:
    """Call check() until it returns True, within a bound; fail with why() and the workers' logs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} {why()}\n{h.log_tail()}")


def _broadcasts(h: Harness) -> float:
    """Market-broadcast records the workers have applied so far (workers not up yet count 0)."""
    total = 0.0
    for port in h.web_ports:
        code, body = _get(port, "/metrics")
        if code == 200:
            for family in text_string_to_metric_families(body.decode()):
                total += sum(
                    s.value
                    for s in family.samples
                    if s.name == "spma_events_total"
                    and s.labels == {"topic": "market-broadcast", "outcome": "applied"}
                )
    return total


def _open(h: Harness, ex: Exchange, accounts: int) -> list[str]:
    """List the instruments and publish a market, wait until every partition has applied them
    (so no fill meets an unknown instrument), then fund and trade some accounts; the accounts."""
    ex.list_instruments()
    ex.publish_market()
    always = sum(1 for t, _, _ in ex.inputs if t in ("instruments", "book-depth", "vol-surfaces"))
    h.send(ex.inputs)
    want = always * h.settings.partitions
    _wait_for("the market on every partition", lambda: _broadcasts(h) >= want, 90, h)
    ex.inputs.clear()
    names = list(ex.open_accounts(accounts))
    h.send(ex.inputs)
    return names


def test_metrics_move_when_events_flow(kafka_bootstrap: str, tmp_path: Path) -> None:
    with running(kafka_bootstrap, tmp_path, workers=1, partitions=4) as h:
        port = h.web_ports[0]
        _wait_for("the web server", lambda: _get(port, "/metrics")[0] == 200, 60, h)
        before = _scrape(port)
        assert _value(before, "spma_events_total", topic="fills", outcome="applied") == 0
        out = h.collect(("margin-status", "dlq", "insurance-fund"))
        ex = Exchange(datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=2))
        quotes = 3 * (len(ex.prices) + 1)  # three sources, every underlying and USDC
        accounts = _open(h, ex, 6)
        fills = [rec for topic, _, rec in ex.inputs if topic == "fills"]
        # a record that is not Avro at all, and a LIQUIDATION fill whose fee goes to the fund
        h.producer.produce(h.settings.topic("fills"), key=b"junk", value=b"not avro")
        liquidation = r.Fill(
            fill_id="liq-1",
            account=accounts[0],
            instrument="BTC-PERPETUAL",
            side="SELL",
            qty=0.01,
            price=ex.prices["BTC"],
            fee=25.0,
            liquidity="LIQUIDATION",
            ts=ex.tick(),
        )
        h.send([("fills", accounts[0], liquidation)])
        out.wait(
            lambda c: (
                bool(c.records["dlq"])
                and bool(c.records["insurance-fund"])
                and {s.account for s in c.decoded("margin-status")} >= set(accounts)
            ),  # type: ignore[attr-defined]
            timeout_s=60,
            what="statuses, the dlq record and the fund's fee",
        )
        out.settle(quiet_s=3.0, timeout_s=30)
        statuses = len(out.records["margin-status"])
        out.close()

        def caught_up() -> bool:
            m = _scrape(port)
            return _value(m, "spma_outputs_total", topic="margin-status") >= statuses and _value(
                m, "spma_outputs_total", topic="market-broadcast"
            ) == _value(m, "spma_events_total", topic="market-broadcast", outcome="applied")

        _wait_for("the worker's counts", caught_up, 20, h)
        m = _scrape(port)
        applied = _value(m, "spma_events_total", topic="fills", outcome="applied")
        assert applied == len(fills) + 1
        assert _value(m, "spma_events_total", topic="fills", outcome="dlq") == 1
        assert _value(m, "spma_dlq_records_total", reason="BAD_MAGIC") == 1
        assert _value(m, "spma_outputs_total", topic="dlq") == 1
        assert _value(m, "spma_processing_seconds_count", kind="fills") == len(fills) + 2
        assert _value(m, "spma_processing_seconds_count", kind="collateral") > 0
        oracle = sum(
            _value(m, "spma_events_total", topic="oracle-prices", outcome=o)
            for o in ("applied", "conflated")
        )
        assert oracle == quotes
        broadcasts = _value(m, "spma_events_total", topic="market-broadcast", outcome="applied")
        assert broadcasts > 0
        assert _value(m, "spma_revaluation_seconds_count") == broadcasts
        assert _value(m, "spma_outputs_total", topic="margin-status") == statuses
        assert _value(m, "spma_outputs_total", topic="market-broadcast") == broadcasts
        by_state = {
            s: _value(m, "spma_accounts", state=s)
            for s in ("HEALTHY", "MARGIN_CALL", "LIQUIDATION", "BANKRUPT")
        }
        assert sum(by_state.values()) == len(accounts), by_state
        assert _value(m, "spma_insurance_fund_balance", currency="USD") == pytest.approx(25.0)
        _operator_metrics(m, h)
        assert _get(port, "/health") == (200, b'{"status":"ok"}')
        assert _get(port, "/ready") == (200, b'{"ready":true}')
        _bad_requests(port, h)


def _raw(port: int, data: bytes) -> bytes:
    """Send bytes to a worker's web port; the start of its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        return conn.recv(64)


def _bad_requests(port: int, h: Harness) -> None:
    """A malformed or oversized request gets its 400 and one log line, no traceback."""
    assert _raw(port, b"GARBAGE\r\n\r\n").split(b" ")[1] == b"400"
    long_line = b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _raw(port, long_line).split(b" ")[1] == b"400"
    big_header = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n"
    assert _raw(port, big_header).split(b" ")[1] == b"400"
    time.sleep(1.0)
    log = h.logs[0].read_text()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("bad HTTP request refused (400)") == 2, log[-3000:]


def _operator_metrics(m: Samples, h: Harness) -> None:
    """What an SRE reads: lag on every input partition (all caught up), input ages, readiness,
    the rebalance that gave the worker its partitions, the process and the build."""
    prefix = h.settings.topic_prefix
    for topic in ("fills", "collateral", "market-broadcast", "oracle-prices", "instruments"):
        lags = [
            v
            for (name, labels), v in m.items()
            if name == "spma_consumer_lag" and dict(labels)["topic"] == prefix + topic
        ]
        assert len(lags) == h.settings.partitions and set(lags) == {0.0}, (topic, lags)
    for topic in ("fills", "oracle-prices", "market-broadcast"):
        assert 0 < _value(m, "spma_input_age_seconds", topic=topic) < 600, topic
    assert _value(m, "spma_ready") == 1
    assert _value(m, "spma_rebalances_total") >= 1
    assert _value(m, "spma_rebalance_seconds_count") >= 1
    assert _value(m, "spma_table_recovery_remaining", kind="active") == 0
    assert _value(m, "spma_mark_stale", underlying="BTC") == 0
    assert _value(m, "spma_producer_buffer_full_total") == 0
    assert _value(m, "process_resident_memory_bytes") > 10e6
    assert _value(m, "process_open_fds") > 0
    builds = [labels for (name, labels), v in m.items() if name == "spma_build_info" and v == 1]
    assert len(builds) == 1 and dict(builds[0])["version"], builds


TOKEN = "operators-only-0123456789"


def test_account_view_from_either_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {"SPMA_WEB_TOKEN": TOKEN}  # the workers forward with it too
    with running(kafka_bootstrap, tmp_path, workers=2, partitions=8, env=env) as h:
        out = h.collect(("margin-status",))
        ex = Exchange(datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=2))
        accounts = _open(h, ex, 16)
        out.wait(
            lambda c: {s.account for s in c.decoded("margin-status")} >= set(accounts),  # type: ignore[attr-defined]
            timeout_s=90,
            what="a status for every account",
        )
        final_ts = ex.tick(1000)
        h.send([deposit(a, 1.0, final_ts, f"final-{a}") for a in accounts])

        def finals(c: Collector) -> dict[str, r.MarginStatus]:
            return {
                s.account: s  # type: ignore[attr-defined,misc]
                for s in c.decoded("margin-status")
                if s.ts == final_ts  # type: ignore[attr-defined]
            }

        out.wait(lambda c: len(finals(c)) == len(accounts), timeout_s=60, what="final statuses")
        expected = finals(out)
        out.close()
        answers: dict[tuple[int, str], dict] = {}

        not_ready: dict[int, bytes] = {}

        def everyone_answers() -> bool:
            """Both workers are ready and answer for every account, from one owner per account."""
            for port in h.web_ports:
                code, body = _get(port, "/ready")
                if code != 200:
                    not_ready[port] = body
                    return False
            for port in h.web_ports:
                for a in accounts:
                    code, body = _get(port, f"/accounts/{a}", token=TOKEN)
                    if code != 200:
                        return False
                    answers[port, a] = orjson.loads(body)
            owners = {a: {answers[p, a]["served_by"] for p in h.web_ports} for a in accounts}
            served = {u for urls in owners.values() for u in urls}
            return all(len(u) == 1 for u in owners.values()) and len(served) == 2

        _wait_for(
            "both workers ready, owning partitions and answering",
            everyone_answers,
            60,
            h,
            lambda: f"last /ready answers not 200: {not_ready}",
        )
        urls = {f"http://127.0.0.1:{p}" for p in h.web_ports}
        for a in accounts:
            first, second = (answers[p, a] for p in h.web_ports)
            assert first == second, a
            status = expected[a]
            assert first["served_by"] in urls
            assert first["account"] == a
            assert first["partition"] == status.input_partition
            assert first["state"] == status.state.value
            assert first["params_version"] == status.params_version
            for key in ("equity", "equity_mm", "equity_im", "im", "mm", "es99"):
                assert first[key] == pytest.approx(getattr(status, key), rel=1e-9, abs=1e-9), key
            if status.ratio_mm is None:
                assert first["ratio_mm"] is None
            else:
                assert first["ratio_mm"] == pytest.approx(status.ratio_mm, rel=1e-9)
            assert {c["underlying"] for c in first["components"]} == {
                c.underlying for c in status.components
            }
        for port in h.web_ports:
            code, body = _get(port, "/accounts/nobody-at-all", token=TOKEN)
            assert code == 404
            assert orjson.loads(body) == {"error": "unknown account", "account": "nobody-at-all"}
            _only_operators(port, accounts[0], h)
        _survivor_takes_over(h, accounts, {a: answers[h.web_ports[0], a] for a in accounts})


def _only_operators(port: int, account: str, h: Harness) -> None:
    """The web port serves the worker's views only, the account views with the token only, and
    an id is one path segment however it is escaped (a worker forwards it escaped)."""
    assert _get(port, f"/accounts/{account}")[0] == 401
    assert _get(port, f"/accounts/{account}", token="wrong")[0] == 401
    for path in ("/metrics", "/health", "/ready"):
        code, body = _get(port, path)
        assert code == 200, (path, body[:500])
    changelog = f"{h.app_id}-portfolios-changelog"
    for path in (
        "/",
        "/table/portfolios/",
        f"/table/portfolios/{account}/",
        "/router/",
        "/graph/",
        "/stats/",
        f"/{changelog}",
    ):
        assert _get(port, path, token=TOKEN)[0] == 404, path
    for sneaky in (f"nobody%2F..%2F{account}", f"x%2F..%2F..%2Ftable%2Fportfolios%2F{account}"):
        code, body = _get(port, f"/accounts/{sneaky}", token=TOKEN)
        assert code == 404, (sneaky, body)
        assert orjson.loads(body)["error"] == "unknown account", body


def _survivor_takes_over(h: Harness, accounts: list[str], before: dict[str, dict]) -> None:
    """Stop the second worker: the first takes its partitions over and answers for every account
    itself, from its table (after the rebalance no partition has a processor until its next
    event, so every answer comes from a one-account processor built from the table).

    The figures are not compared with the earlier answers: on Tansu with the memory store, the
    recovery after a rebalance can stop short of the last changelog records (the high watermark
    is under-reported when a producer batched them), so a record may lack its last input; that
    is the reliability tests' matter, not the view's.
    """
    me = f"http://127.0.0.1:{h.web_ports[0]}"
    h.workers[1].terminate()
    h.workers[1].wait(timeout=30)
    taken: dict[str, dict] = {}

    def survivor_answers() -> bool:
        for a in accounts:
            code, body = _get(h.web_ports[0], f"/accounts/{a}", token=TOKEN)
            if code != 200:
                return False
            taken[a] = orjson.loads(body)
        return {t["served_by"] for t in taken.values()} == {me}

    _wait_for("the survivor answering for every account", survivor_answers, 60, h)
    for a in accounts:
        old, new = before[a], taken[a]
        assert (new["account"], new["partition"]) == (old["account"], old["partition"]), a
        assert new["params_version"] == old["params_version"], a
        assert new["im"] > 0 and {c["underlying"] for c in new["components"]} == {
            c["underlying"] for c in old["components"]
        }, a


def test_loadgen_sends_valid_records_at_the_rate(kafka_bootstrap: str, unique_prefix: str) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=4)
    create_topics(settings, timeout_s=30)
    plan = LoadPlan(rate=200.0, accounts=5, count=80, mix=(6, 3, 1))
    report = run_load(settings, plan)
    assert report.events == 80
    assert report.seconds >= 79 / 200.0
    topics = ("instruments", "collateral", *KINDS)
    expected = {t: report.setup.get(t, 0) + report.sent.get(t, 0) for t in topics}
    got = drain(settings, topics, expect=sum(expected.values()), timeout_s=60)
    codec = codec_from_settings(settings)
    prefix = settings.topic_prefix
    decoded: dict[str, list[r.Record]] = {t: [] for t in topics}
    for m in got:
        topic = m.topic.removeprefix(prefix)
        decoded[topic].append(codec.decode(topic, m.value or b""))  # validates, or raises
        if topic in ("fills", "collateral"):
            assert m.partition == key_partitions((m.key or b"").decode(), 4)[0]
    assert {t: len(v) for t, v in decoded.items()} == expected
    assert all(report.sent.get(k, 0) > 0 for k in KINDS), report.sent
    listed = {i.name for i in decoded["instruments"]}  # type: ignore[attr-defined]
    funded = {t.account for t in decoded["collateral"]}  # type: ignore[attr-defined]
    assert len(funded) == 5
    now = datetime.now(tz=UTC)
    for fill in decoded["fills"]:
        assert fill.instrument in listed  # type: ignore[attr-defined]
        assert fill.account in funded  # type: ignore[attr-defined]
        assert abs((now - fill.ts).total_seconds()) < 60  # type: ignore[attr-defined]
    assert len({f.fill_id for f in decoded["fills"]}) == len(decoded["fills"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0", "--count", "5"], "rate must be positive"),
        (["--accounts", "0", "--count", "5"], "accounts must be at least 1"),
        (["--rate", "10"], "give a count or a duration"),
        (["--count", "5", "--mix", "1,2"], "--mix wants three numbers"),
        (["--count", "5", "--mix", "0,0,0"], "mix wants three non-negative shares"),
    ],
)
def test_loadgen_bad_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["loadgen", *args])
    assert result.exit_code == 2
    assert message in result.output
