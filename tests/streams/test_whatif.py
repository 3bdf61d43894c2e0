"""What-if and pre-trade on live workers (two, on the real broker, started once for the module):
the answers equal `spma margin --trade/--move` on the same account and market to 1e-9, from
either worker (a request is routed to the account's owner with the token), a what-if changes
nothing (the account view is the same after, and the next status is the one a what-if of that
input predicted), and a bad request gets a clear 4xx with a JSON error naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.market import market_to_mapping
from streams import records as r
from streams.market.state import MarketState
from streams.tools.exchange import Exchange
from tests.streams.samples import deposit
from tests.streams.test_operations import _get, _open, _wait_for
from tests.streams.worker_harness import Harness, running

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "risk-officers-0123456789"
FIGURES = ("equity", "equity_mm", "equity_im", "im", "mm", "es99", "var99", "liquidity_addon")
TRADE = ("BTC-PERPETUAL", 0.25)  # bought, at the mark


def _post(port: int, path: str, body: bytes, token: str | None = TOKEN) -> tuple[int, Any]:
    """HTTP POST on a worker: status and decoded JSON body (error statuses too)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two workers with funded, trading accounts, every account answering from its owner."""
    logs = tmp_path_factory.mktemp("whatif")
    env = {"SPMA_WEB_TOKEN": TOKEN}
    with running(kafka_bootstrap, logs, workers=2, partitions=8, env=env) as h:
        out = h.collect(("margin-status", "market-broadcast"))
        ex = Exchange(datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=2))
        accounts = _open(h, ex, 8)
        out.wait(
            lambda c: {s.account for s in c.decoded("margin-status")} >= set(accounts),  # type: ignore[attr-defined]
            timeout_s=180,
            what="a status for every account",
        )
        out.settle(quiet_s=4.0)

        def answering() -> bool:
            return all(
                _get(p, f"/accounts/{a}", token=TOKEN)[0] == 200
                for p in h.web_ports
                for a in accounts
            )

        _wait_for("both workers answering for every account", answering, 180, h)
        yield h, out, ex, accounts, logs
        out.close()


def _market_file(h: Harness, out: Any, path: Path) -> MarketState:
    """The partitions' market, from the broadcast topic as every partition applied it."""
    market = MarketState()
    for msg in sorted(
        (m for m in out.records["market-broadcast"] if m.partition == 0), key=lambda m: m.offset
    ):
        market.apply(h.codec.decode("market-broadcast", msg.value))
    path.write_text(json.dumps(market_to_mapping(market.snapshot())))
    return market


def _spma_margin(portfolio: dict[str, Any], market: Path, tmp: Path, *options: str) -> Any:
    """`spma margin` on a portfolio (the explained one an answer shows) and the market file."""
    file = tmp / f"{portfolio['account']}.json"
    file.write_text(
        json.dumps(
            {
                "account": portfolio["account"],
                "collateral": {c["asset"]: c["balance"] for c in portfolio["collateral"]},
                "positions": [
                    {"instrument": p["instrument"], "qty": p["qty"], "entry_price": p["entry"]}
                    for p in portfolio["positions"]
                ],
            }
        )
    )
    cmd = [sys.executable, "-m", "streams.cli.main", "margin", "--portfolio", str(file)]
    done = subprocess.run(
        [*cmd, "--market", str(market), *options], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _close(got: dict[str, Any], want: dict[str, Any]) -> None:
    """The same explained figures to 1e-9."""
    for key in FIGURES:
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-9), key
    assert got["state"] == want["state"]
    assert [p["instrument"] for p in got["positions"]] == [
        p["instrument"] for p in want["positions"]
    ]


def test_what_if_and_pre_trade_equal_spma_margin(live: Any, tmp_path: Path) -> None:
    h, out, _, accounts, _ = live
    market_path = tmp_path / "market.json"
    market = _market_file(h, out, market_path)
    mark = market.snapshot().underlyings["BTC"].mark
    name, qty = TRADE
    body = {
        "fills": [{"instrument": name, "qty": qty, "price": mark}],
        "transfers": [{"asset": "USDC", "amount": -1_000.0}],
        "moves": {"BTC": -0.1},
        "vol_moves": {"ETH": 0.2},
    }
    options = ("--trade", f"{name}:{qty!r}@{mark!r}", "--transfer", "USDC:-1000")
    options += ("--move", "BTC:-10%", "--vol-move", "ETH:20%")
    for a in accounts[:4]:
        answers = [_post(p, f"/accounts/{a}/what-if", orjson.dumps(body)) for p in h.web_ports]
        assert [code for code, _ in answers] == [200, 200], answers
        first, second = (b for _, b in answers)
        assert first == second and first["account"] == a  # one owner answers either way
        offline = _spma_margin(first["before"], market_path, tmp_path, *options)
        _close(first["before"], offline["before"])
        # the account view serves the shape `spma margin` prints, with the same figures
        view = orjson.loads(_get(h.web_ports[1], f"/accounts/{a}", token=TOKEN)[1])
        plain = _spma_margin(first["before"], market_path, tmp_path)
        assert set(offline["before"]) <= set(view) and set(offline["before"]) <= set(plain)
        _close(view, plain)
        _close(view, first["before"])
        assert view["collateral"] == first["before"]["collateral"]
        assert [c["underlying"] for c in view["components"]] == [
            c["underlying"] for c in plain["components"]
        ]
        _close(first["after"], offline["after"])
        for key, change in offline["change"].items():
            if key != "state":
                assert first["change"][key] == pytest.approx(change, rel=1e-9, abs=1e-9), key
        order = {"instrument": name, "side": "sell", "qty": qty, "price": mark}
        code, pre = _post(h.web_ports[0], f"/accounts/{a}/pre-trade", orjson.dumps(order))
        assert code == 200, pre
        sold = _spma_margin(
            first["before"], market_path, tmp_path, "--trade", f"{name}:{-qty!r}@{mark!r}"
        )
        assert pre["im_after"] == pytest.approx(sold["after"]["im"], rel=1e-9, abs=1e-9)
        assert pre["equity_im_after"] == pytest.approx(
            sold["after"]["equity_im"], rel=1e-9, abs=1e-9
        )
        assert pre["accept"] == (
            sold["after"]["equity_im"] >= sold["after"]["im"]
            or (
                sold["after"]["im"] < sold["before"]["im"]
                and sold["after"]["im"] - sold["after"]["equity_im"]
                <= max(sold["before"]["im"] - sold["before"]["equity_im"], 0.0)
            )
        )
        assert pre["reason"]


def test_a_what_if_changes_nothing(live: Any) -> None:
    h, out, ex, accounts, _ = live
    port = h.web_ports[0]
    views = {a: orjson.loads(_get(port, f"/accounts/{a}", token=TOKEN)[1]) for a in accounts}
    predicted = {}
    for a in accounts:
        heavy = {"fills": [{"instrument": "ETH-PERPETUAL", "qty": -50.0, "price": 3000.0}]}
        assert _post(port, f"/accounts/{a}/what-if", orjson.dumps(heavy))[0] == 200
        code, answer = _post(
            port,
            f"/accounts/{a}/pre-trade",
            orjson.dumps({"instrument": "BTC-PERPETUAL", "side": "buy", "qty": 3.0, "price": 1e5}),
        )
        assert code == 200, answer
        code, answer = _post(
            port, f"/accounts/{a}/what-if", b'{"transfers": [{"asset": "USDC", "amount": 7.0}]}'
        )
        assert code == 200, answer
        predicted[a] = answer["after"]
    for a in accounts:
        assert orjson.loads(_get(port, f"/accounts/{a}", token=TOKEN)[1]) == views[a], a
    final_ts = ex.tick(1000)
    h.send([deposit(a, 7.0, final_ts, f"whatif-final-{a}") for a in accounts])

    def finals(c: Any) -> dict[str, r.MarginStatus]:
        return {s.account: s for s in c.decoded("margin-status") if s.ts == final_ts}

    out.wait(lambda c: len(finals(c)) == len(accounts), timeout_s=60, what="final statuses")
    for a, status in finals(out).items():
        for key in ("equity", "equity_mm", "equity_im", "im", "mm", "es99"):
            assert getattr(status, key) == pytest.approx(predicted[a][key], rel=1e-9, abs=1e-9), (
                a,
                key,
            )
        assert status.state.value == predicted[a]["state"]


@pytest.mark.parametrize(
    ("action", "body", "status", "field"),
    [
        (
            "what-if",
            b'{"fills": [{"instrument": "BTC-1JAN99", "qty": 1, "price": 1}]}',
            400,
            "fills[0].instrument",
        ),
        (
            "what-if",
            b'{"fills": [{"instrument": "DOGE-PERPETUAL", "qty": 1, "price": 1}]}',
            400,
            "fills[0].instrument",
        ),
        (
            "what-if",
            b'{"fills": [{"instrument": "BTC-PERPETUAL", "qty": "1", "price": 1}]}',
            400,
            "fills[0].qty",
        ),
        (
            "what-if",
            b'{"fills": [{"instrument": "BTC-PERPETUAL", "qty": 1, "price": 1e999}]}',
            400,
            None,
        ),
        ("what-if", b'{"moves": {"BTC": -2}}', 400, "moves.BTC"),
        ("what-if", b'{"transfers": [{"asset": "NOPE", "amount": 1}]}', 400, "transfers[0].asset"),
        ("what-if", b"{not json", 400, "body"),
        ("what-if", b'{"fills": []}' + b" " * 70_000, 413, "body"),
        (
            "pre-trade",
            b'{"instrument": "BTC-PERPETUAL", "side": "hold", "qty": 1, "price": 1}',
            400,
            "side",
        ),
        (
            "pre-trade",
            b'{"instrument": "BTC-PERPETUAL", "side": "buy", "qty": -1, "price": 1}',
            400,
            "qty",
        ),
        ("pre-trade", b'{"instrument": "BTC-PERPETUAL", "side": "buy", "qty": 1}', 400, "price"),
    ],
)
def test_bad_requests_get_a_json_4xx(
    live: Any, action: str, body: bytes, status: int, field: str | None
) -> None:
    h, _, _, accounts, _ = live
    for port in h.web_ports:
        code, answer = _post(port, f"/accounts/{accounts[0]}/{action}", body)
        assert code == status, answer
        assert answer["error"] and (field is None or answer["field"] == field), answer
    assert "Traceback" not in "".join(p.read_text() for p in h.logs)


def test_unknown_accounts_callers_without_the_token_and_other_methods(live: Any) -> None:
    h, _, _, accounts, _ = live
    for port in h.web_ports:
        code, answer = _post(port, "/accounts/nobody-at-all/what-if", b"{}")
        assert (code, answer["error"]) == (404, "unknown account")
        code, _ = _post(port, f"/accounts/{accounts[0]}/pre-trade", b"{}", token=None)
        assert code == 401
        assert _get(port, f"/accounts/{accounts[0]}/what-if", token=TOKEN)[0] == 404  # POST only
