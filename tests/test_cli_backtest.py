"""`spma backtest` as a user runs it: a small end-to-end run writing the JSON and a PNG per
parameter set, and bad input (a missing or malformed file, an unknown preset) getting one
message naming the file and the field, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streams.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def prices_csv(folder: Path, days: int = 14) -> Path:
    """A small random-walk history of BTC and ETH, daily, with implied vols on BTC."""
    rng = np.random.default_rng(3)
    lines = ["timestamp,underlying,price,implied_vol"]
    btc, eth = 100_000.0, 4_000.0
    for day in range(days + 1):
        stamp = f"2026-11-{day + 10:02d}T00:00:00Z"
        lines += [f"{stamp},BTC,{btc:.2f},0.6", f"{stamp},ETH,{eth:.2f},"]
        btc *= float(np.exp(rng.normal(0, 0.03)))
        eth *= float(np.exp(rng.normal(0, 0.04)))
    file = folder / "prices.csv"
    file.write_text("\n".join(lines) + "\n")
    return file


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    """Run the command in process; its exit code, everything it printed and what ended it."""
    result = CliRunner().invoke(app, ["backtest", *args])
    return result.exit_code, result.output, result.exception


def test_a_small_run_writes_the_json_and_a_chart_per_set(tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, text, _ = invoke(
        "--prices", str(prices_csv(tmp_path)),
        "--params", "default",
        "--params", "static",
        "--portfolio", str(EXAMPLES / "portfolio.json"),
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert "cov MM" in text and "overlevered" in text and "mm-0001" in text
    data = json.loads((out / "backtest.json").read_text())
    assert list(data["params"]) == ["default", "static"]
    assert data["path"]["underlyings"] == ["BTC", "ETH"]
    assert set(data["params"]["default"]["portfolios"]) >= {"covered_call", "mm-0001"}
    for label in ("default", "static"):
        png = out / f"backtest-{label}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _error(code: int, text: str, exc: BaseException | None) -> str:
    """The one message of a clean failure."""
    assert code == 2, text
    assert isinstance(exc, SystemExit)
    assert "Traceback" not in text
    assert "spma: error:" in text
    return text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--prices", "nowhere.csv"], "prices file nowhere.csv"),
        (["--params", "nope"], "unknown preset 'nope'"),
        (["--params", "missing.json"], "params file missing.json"),
        (["--portfolio", "missing.json"], "portfolio file missing.json"),
        (["--horizon-days", "0"], "--horizon-days"),
    ],
)
def test_bad_arguments_exit_2_naming_what(args: list[str], expected: str) -> None:
    assert expected in _error(*invoke(*args))


def test_a_malformed_csv_row_is_named(tmp_path: Path) -> None:
    file = prices_csv(tmp_path)
    file.write_text(file.read_text().replace("ETH,4000.00", "ETH,four"))
    text = _error(*invoke("--prices", str(file)))
    assert "prices.csv line 3: price: 'four' is not a number" in text


def test_a_portfolio_the_path_cannot_price_is_named(tmp_path: Path) -> None:
    file = tmp_path / "sol.json"
    file.write_text(
        json.dumps(
            {
                "account": "s",
                "positions": [{"instrument": "DOGE-PERPETUAL", "qty": 1, "entry_price": 1}],
            }
        )
    )
    text = _error(*invoke("--portfolio", str(file), "--params", "default"))
    assert "sol.json: positions[0].instrument: DOGE-PERPETUAL" in text


def test_a_bad_params_file_names_its_field(tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text(json.dumps({"psr": {"BTC": 2.0}}))
    text = _error(*invoke("--params", str(file)))
    assert "p.json" in text and "psr" in text


def test_a_preset_of_another_shape_is_left_out_of_the_default_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "static.json").write_text(
        json.dumps({"name": "static", "dynamic": {"enabled": False}})
    )
    (presets / "other.json").write_text(json.dumps({"model": "something else"}))
    monkeypatch.setattr("engine.params.PRESETS_DIR", presets)
    monkeypatch.setattr("streams.cli.commands.backtest.PRESETS_DIR", presets)
    out = tmp_path / "report"
    code, text, _ = invoke("--prices", str(prices_csv(tmp_path, days=6)), "--out", str(out))
    assert code == 0, text
    assert "preset other left out" in text
    assert list(json.loads((out / "backtest.json").read_text())["params"]) == ["default", "static"]


def test_a_csv_that_is_not_text_is_named(tmp_path: Path) -> None:
    file = tmp_path / "binary.csv"
    file.write_bytes(b"\xff\xfe\x00garbage")
    assert "binary.csv: not UTF-8 text" in _error(*invoke("--prices", str(file)))
