"""`spma margin` from a shell: JSON and table output, and clean errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.market import market_from_mapping
from engine.offline import margin_from_mappings
from engine.params import RiskParams
from engine.portfolio import portfolio_from_mapping
from engine.whatif import Changes, TradeFill, what_if

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def spma(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_margin_prints_the_engine_result_as_json() -> None:
    out = spma(
        "margin",
        "--portfolio",
        str(EXAMPLES / "portfolio.json"),
        "--market",
        str(EXAMPLES / "market.json"),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    expected = margin_from_mappings(
        json.loads((EXAMPLES / "portfolio.json").read_text()),
        json.loads((EXAMPLES / "market.json").read_text()),
    )
    explained = what_if(
        portfolio_from_mapping(json.loads((EXAMPLES / "portfolio.json").read_text())),
        market_from_mapping(json.loads((EXAMPLES / "market.json").read_text())),
        RiskParams(),
        Changes(),
    ).before.to_dict()
    assert result == {**expected.to_dict(), **explained}  # the margin, then its explanation
    assert {"positions", "collateral", "components", "binding", "restore"} <= set(result)
    for key in (
        "account",
        "state",
        "equity",
        "equity_mm",
        "equity_im",
        "im",
        "mm",
        "directional_total",
        "es99",
        "var99",
        "liquidity_addon",
        "haircuts",
    ):
        assert key in result
    assert set(result["underlyings"]["BTC"]) >= {
        "worst_loss",
        "directional",
        "two_sided",
        "contingencies",
    }


def test_margin_table_and_preset() -> None:
    out = spma(
        "margin",
        "--portfolio",
        str(EXAMPLES / "portfolio.json"),
        "--market",
        str(EXAMPLES / "market.json"),
        "--format",
        "table",
        "--preset",
        "span16",
    )
    assert out.returncode == 0, out.stderr
    assert "worst loss" in out.stdout and "cme-span-16" not in out.stderr
    for shown in ("positions", "BTC-27DEC26-110000-C", "worst scenarios", "deposit to reach IM"):
        assert shown in out.stdout, shown


@pytest.mark.parametrize(
    ("portfolio", "market", "message"),
    [
        (
            {"account": "a", "positions": [{"instrument": "BTC-XX", "qty": 1, "entry_price": 1}]},
            None,
            "positions[0].instrument",
        ),
        (
            {"account": "a", "positions": [{"instrument": "BTC-PERPETUAL", "qty": "x"}]},
            None,
            "positions[0].qty",
        ),
        (
            {
                "account": "a",
                "positions": [{"instrument": "DOGE-PERPETUAL", "qty": 1, "entry_price": 1}],
            },
            None,
            "DOGE",
        ),
        ({"account": "a", "collateral": {"XYZ": 5}}, None, "XYZ"),
        ({"positions": []}, None, "account"),
        (
            None,
            {"as_of": "2026-11-24T08:00:00Z", "underlyings": {"BTC": {"mark": -5}}},
            "underlyings.BTC.mark",
        ),
    ],
)
def test_bad_files_exit_2_naming_the_field(
    tmp_path: Path, portfolio: dict[str, Any] | None, market: dict[str, Any] | None, message: str
) -> None:
    p = tmp_path / "p.json"
    m = tmp_path / "m.json"
    p.write_text(json.dumps(portfolio) if portfolio else (EXAMPLES / "portfolio.json").read_text())
    m.write_text(json.dumps(market) if market else (EXAMPLES / "market.json").read_text())
    out = spma("margin", "--portfolio", str(p), "--market", str(m))
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_unreadable_files_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = spma("margin", "--portfolio", str(bad), "--market", str(EXAMPLES / "market.json"))
    assert out.returncode == 2 and "not valid JSON" in out.stderr
    out = spma("margin", "--portfolio", str(tmp_path / "nope.json"), "--market", str(bad))
    assert out.returncode == 2 and "nope.json" in out.stderr
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"psr_default": 5}))
    out = spma(
        "margin",
        "--portfolio",
        str(EXAMPLES / "portfolio.json"),
        "--market",
        str(EXAMPLES / "market.json"),
        "--params",
        str(params),
    )
    assert out.returncode == 2 and "psr_default" in out.stderr


def test_margin_trade_and_move_print_before_after_and_the_change() -> None:
    files = (
        "--portfolio",
        str(EXAMPLES / "portfolio.json"),
        "--market",
        str(EXAMPLES / "market.json"),
    )
    out = spma("margin", *files, "--trade", "BTC-PERPETUAL:-0.5@95000", "--move", "BTC:-10%")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    expected = what_if(
        portfolio_from_mapping(json.loads((EXAMPLES / "portfolio.json").read_text())),
        market_from_mapping(json.loads((EXAMPLES / "market.json").read_text())),
        RiskParams(),
        Changes((TradeFill("BTC-PERPETUAL", -0.5, 95_000.0),), moves={"BTC": -0.1}),
    )
    assert shown == {"account": expected.before.margin.account, **expected.to_dict()}
    assert shown["change"]["im"] == shown["after"]["im"] - shown["before"]["im"]
    table = spma("margin", *files, "--trade", "BTC-PERPETUAL:1@1e5", "--format", "table")
    assert table.returncode == 0, table.stderr
    assert "before" in table.stdout and "after" in table.stdout and "change" in table.stdout


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--trade", "BTC-PERPETUAL-1@100", "--trade 'BTC-PERPETUAL-1@100': must be"),
        ("--trade", "BTC-PERPETUAL:1@x", "'x' is not a number"),
        ("--trade", "BTC-PERPETUAL:nan@100", "must be finite"),
        ("--trade", "BTC-PERPETUAL:1@-5", "--trade: fills[0].price: must be positive"),
        ("--trade", "NOPE:1@5", "--trade: fills[0].instrument"),
        ("--move", "BTC", "--move 'BTC': must be NAME:VALUE"),
        ("--move", "BTC:-100%", "--move: moves.BTC: must be above -1"),
        ("--move", "DOGE:5%", "--move: moves.DOGE: no such underlying"),
        ("--transfer", "XYZ:5", "--transfer: transfers[0].asset"),
    ],
)
def test_bad_what_if_values_exit_2_naming_the_option(option: str, value: str, message: str) -> None:
    files = (
        "--portfolio",
        str(EXAMPLES / "portfolio.json"),
        "--market",
        str(EXAMPLES / "market.json"),
    )
    out = spma("margin", *files, option, value)
    assert out.returncode == 2, out.stdout
    assert message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
