"""The backtest's paths: the built-in GARCH year is seeded and deterministic and holds the
documented crashes at their sizes, with vols rising by their multiples; the CSV loader reads a
grid and names the line and field of a bad row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.backtest.episodes import EPISODES
from engine.backtest.errors import BacktestInputError
from engine.backtest.garch import garch_year
from engine.backtest.path import PricePath
from engine.backtest.prices_csv import load_prices_csv


@pytest.fixture(scope="module")
def year() -> PricePath:
    """One built-in year for the module's tests."""
    return garch_year(7)


def test_the_year_is_seeded_and_deterministic() -> None:
    a, b, c = garch_year(7), garch_year(7), garch_year(8)
    assert np.array_equal(a.prices, b.prices)
    assert a.implied_vols is not None and b.implied_vols is not None
    assert np.array_equal(a.implied_vols, b.implied_vols)
    assert not np.array_equal(a.prices, c.prices)
    assert a.steps == 366 and a.underlyings == ("BTC", "ETH", "SOL")
    assert np.all(np.diff(a.times) == 86400.0)


def _move(path: PricePath, start: int, days: int, underlying: str) -> float:
    """The price ratio over ``days`` steps from ``start``."""
    k = path.underlyings.index(underlying)
    return float(path.prices[start + days, k] / path.prices[start, k])


def test_the_documented_crash_sizes_are_in_the_year(year: PricePath) -> None:
    covid, may21, ftx, oct25 = (e.day for e in EPISODES)
    assert _move(year, covid, 2, "BTC") == pytest.approx(0.50)
    assert 0.5 < _move(year, covid, 5, "BTC") < 0.75  # a partial rebound
    assert _move(year, may21, 1, "BTC") == pytest.approx(0.70)
    assert _move(year, ftx, 3, "BTC") == pytest.approx(0.75)
    assert _move(year, oct25, 1, "BTC") == pytest.approx(0.86)
    assert _move(year, oct25, 1, "SOL") == pytest.approx(0.60)  # alts -40%
    assert _move(year, oct25, 1, "ETH") < _move(year, oct25, 1, "BTC")


def test_vols_rise_by_the_documented_multiples(year: PricePath) -> None:
    vols = year.implied_vols
    assert vols is not None
    for episode in EPISODES:
        ratio = vols[episode.day + 1] / vols[episode.day]
        assert ratio == pytest.approx(np.full(3, episode.vol_multiple)), episode.name


def test_episodes_are_named_in_the_path(year: PricePath) -> None:
    windows = year.episodes
    assert [w.first for w in windows] == [e.day for e in EPISODES]
    assert all(w.last > w.first for w in windows)


def test_index_after_finds_the_horizon(year: PricePath) -> None:
    ahead = year.index_after(2.0)
    assert ahead[0] == 2 and ahead[363] == 365 and ahead[364] == -1


CSV = """timestamp,underlying,price,implied_vol
2027-01-01T00:00:00Z,BTC,100000,0.6
2027-01-01T00:00:00Z,ETH,4000,
2027-01-02T00:00:00Z,BTC,98000,0.65
2027-01-02T00:00:00Z,ETH,3900,
2027-01-03T00:00:00Z,ETH,3950,0.7
2027-01-03T00:00:00Z,BTC,99000,0.62
"""


def test_a_csv_is_read_into_a_grid(tmp_path: Path) -> None:
    file = tmp_path / "p.csv"
    file.write_text(CSV)
    path = load_prices_csv(file)
    assert path.underlyings == ("BTC", "ETH")
    assert path.prices[:, 0].tolist() == [100000, 98000, 99000]
    assert path.implied_vols is not None
    assert np.isnan(path.implied_vols[0, 1]) and path.implied_vols[2, 1] == 0.7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CSV.replace("98000", "abc"), "line 4: price: 'abc' is not a number"),
        (CSV.replace("2027-01-02T00:00:00Z,ETH", "yesterday,ETH"), "line 5: timestamp"),
        (CSV.replace("3900", "-1"), "line 5: price: must be positive"),
        (CSV.replace("implied_vol", "iv"), "header: unknown column 'iv'"),
        (CSV.replace("price,", "px,"), "header: missing column 'price'"),
        ("\n".join(CSV.splitlines()[:-1]), "no BTC price at 2027-01-03"),
        (CSV.replace(",0.6\n", ",0.6,9\n"), "line 2: more fields"),
    ],
)
def test_a_bad_csv_names_the_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.csv"
    file.write_text(text)
    with pytest.raises(BacktestInputError, match=r"bad\.csv") as err:
        load_prices_csv(file)
    assert message in str(err.value)


def test_a_missing_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(BacktestInputError, match=r"nowhere\.csv"):
        load_prices_csv(tmp_path / "nowhere.csv")
