"""`spma backtest`: the margin model backtested on price paths, parameter sets side by side.

For each step of a path (the built-in seeded GARCH year with its four crashes, or `--prices`),
each parameter set margins the held portfolios (the demo's five kinds and any `--portfolio`
files); the loss each realises over the liquidation horizon is compared with the MM and IM asked.
Prints a table, writes backtest.json and a PNG per parameter set into `--out`. Bad input gets one
message naming the file and the field, and exit 2.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from engine.backtest.errors import BacktestInputError
from engine.backtest.garch import DEFAULT_SEED, garch_year
from engine.backtest.path import PricePath
from engine.backtest.portfolios import PortfolioSpec, file_spec, kind_specs
from engine.backtest.prices_csv import load_prices_csv
from engine.backtest.result import COVERAGE, HORIZON_DAYS, BacktestResult, backtest
from engine.instruments import parse_instrument
from engine.params import PRESETS_DIR, RiskParams
from engine.portfolio import Portfolio, PortfolioError, portfolio_from_mapping
from streams.cli.commands.backtest_chart import ZONE_COLOURS, write_chart
from streams.cli.commands.common import fail, first_error, is_tty, read_json

TABLE_WIDTH = 140
"""Columns the table is laid out in when stdout is not a terminal (a file, a pipe, a test)."""


def preset_names() -> list[str]:
    """'default' and every preset shipped in engine/presets, the default choice of sets."""
    return ["default", *sorted(p.stem for p in PRESETS_DIR.glob("*.json"))]


def load_one(value: str) -> tuple[str, RiskParams]:
    """A parameter set from a file (.json or .toml, or any existing path) or a preset name."""
    path = Path(value)
    is_file = path.suffix.lower() in (".json", ".toml") or path.exists()
    try:
        if is_file:
            return path.stem, RiskParams.load(path)
        return value, RiskParams.preset(value)
    except ValidationError as exc:
        field, message = first_error(exc)
        fail(f"params file {path}: {field or 'params'}: {message}")
    except OSError as exc:
        fail(f"params file {path}: {exc.strerror or exc}")
    except ValueError as exc:
        fail(f"params {'file ' + str(path) if is_file else value}: {exc}")


def shipped_sets() -> list[tuple[str, RiskParams]]:
    """'default' and every preset that loads as a parameter set; one that does not (a model of
    another shape) is named on stderr and left out, so it cannot stop the default run."""
    sets = []
    for name in preset_names():
        try:
            sets.append((name, RiskParams.preset(name)))
        except (ValueError, OSError) as exc:
            reason = str(exc).splitlines()[0]
            typer.echo(f"spma: warning: preset {name} left out: {reason}", err=True)
    return sets


def load_params(values: list[str]) -> list[tuple[str, RiskParams]]:
    """Every parameter set asked for (all presets when none), labels made distinct."""
    loaded, seen = [], set[str]()
    for label, params in [load_one(v) for v in values] if values else shipped_sets():
        while label in seen:
            label += "'"
        seen.add(label)
        loaded.append((label, params))
    return loaded


def load_path(prices: Path | None, seed: int) -> PricePath:
    """The user's prices, else the built-in year for the seed."""
    if prices is None:
        return garch_year(seed)
    try:
        return load_prices_csv(prices)
    except BacktestInputError as exc:
        fail(str(exc))


def load_portfolio(path: Path, underlyings: tuple[str, ...]) -> Portfolio:
    """A portfolio file (the `spma margin` format) whose underlyings the path prices."""
    try:
        portfolio = portfolio_from_mapping(read_json(path, "portfolio"))
    except PortfolioError as exc:
        fail(f"portfolio file {path}: {exc}")
    for i, position in enumerate(portfolio.positions):
        underlying = parse_instrument(position.instrument).underlying
        if underlying not in underlyings:
            fail(
                f"portfolio file {path}: positions[{i}].instrument: {position.instrument}: "
                f"the path has no {underlying} prices (it has {', '.join(underlyings)})"
            )
    return portfolio


def portfolio_specs(files: list[Path], path: PricePath) -> list[PortfolioSpec]:
    """The five kinds, then each file (names made distinct)."""
    specs = kind_specs()
    names = {s.name for s in specs}
    for file in files:
        spec = file_spec(load_portfolio(file, path.underlyings))
        name = spec.name
        while name in names:
            name += "'"
        names.add(name)
        specs.append(PortfolioSpec(name, fixed=spec.fixed, roll_days=None))
    return specs


def render(result: BacktestResult, console: Console) -> None:
    """The side-by-side table: per portfolio, one row per parameter set."""
    window = result.window
    dates = result.dates()
    table = Table(
        title=(
            f"SPMA backtest: {result.path.name}, {result.path.steps} steps, "
            f"{result.horizon_days:g}-day horizon, target {result.coverage:.0%}"
        ),
        caption=f"worst stress window {dates[window.first][:10]} to {dates[window.last][:10]}",
    )
    for header in COLUMNS:
        table.add_column(header, no_wrap=True, justify="left" if header in LEFT else "right")
    names = result.runs[0].portfolios
    for p, name in enumerate(names):
        for run, verdicts in zip(result.runs, result.verdicts, strict=True):
            v, pc = verdicts[p], verdicts[p].procyclicality
            colour = ZONE_COLOURS.get(v.zone, "white")
            undefined = f" ({v.undefined} NaN)" if v.undefined else ""
            table.add_row(
                name,
                run.label,
                f"{v.coverage_mm:.2%}",
                f"{v.coverage_im:.2%}",
                f"{len(v.exception_steps)}/{v.horizons}{undefined}",
                f"[{colour}]{v.zone}[/]",
                f"{v.kupiec.statistic:.2f} ({v.kupiec.p_value:.3f})",
                f"{v.christoffersen.p_value:.3f}",
                f"{pc.max_rise:+.0%}",
                f"{pc.peak_to_trough:.2f}",
                f"{pc.stress_rise:+.0%}",
                end_section=run is result.runs[-1],
            )
    console.print(table)


COLUMNS = (
    "portfolio",
    "params",
    "cov MM",
    "cov IM",
    "exc MM",
    "zone",
    "Kupiec (p)",
    "Chr. p",
    "5d rise",
    "peak/trough",
    "stress rise",
)
LEFT = ("portfolio", "params", "zone")


def file_label(label: str) -> str:
    """A parameter set's label as a file name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "params"


def write_outputs(result: BacktestResult, out: Path) -> list[Path]:
    """backtest.json and one PNG per parameter set into ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "backtest.json"]
        written[0].write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))
        for k, run in enumerate(result.runs):
            chart = out / f"backtest-{file_label(run.label)}.png"
            write_chart(chart, result, k)
            written.append(chart)
    except OSError as exc:
        fail(f"--out {out}: {exc.strerror or exc}")
    return written


def register(app: typer.Typer) -> None:
    """Add `spma backtest`."""

    @app.command("backtest")
    def backtest_command(
        params: list[str] = typer.Option(
            [],
            "--params",
            help="a preset name (default, span16, ...) or a .json/.toml file; "
            "repeat for several (default: every preset)",
        ),
        prices: Path | None = typer.Option(
            None, "--prices", help="CSV of timestamp,underlying,price[,implied_vol]"
        ),
        portfolio: list[Path] = typer.Option(
            [], "--portfolio", help="a portfolio JSON file (the spma margin format); repeatable"
        ),
        seed: int = typer.Option(DEFAULT_SEED, "--seed", help="seed of the built-in paths"),
        horizon_days: float = typer.Option(
            HORIZON_DAYS, "--horizon-days", help="liquidation horizon in days"
        ),
        out: Path | None = typer.Option(
            None, "--out", help="folder for backtest.json and the PNGs (default reports/...)"
        ),
    ) -> None:
        """Backtest parameter sets side by side: coverage, Basel zone, procyclicality."""
        if not horizon_days > 0:
            fail(f"--horizon-days: must be positive, got {horizon_days:g}")
        sets = load_params(params)
        path = load_path(prices, seed)
        specs = portfolio_specs(portfolio, path)
        started = time.perf_counter()
        try:
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN margins are counted
                result = backtest(path, specs, sets, horizon_days, COVERAGE)
        except BacktestInputError as exc:
            fail(str(exc))
        elapsed = time.perf_counter() - started
        folder = out or Path("reports") / time.strftime("backtest-%Y%m%d-%H%M%S")
        console = Console() if is_tty() else Console(width=TABLE_WIDTH)
        render(result, console)
        written = write_outputs(result, folder)
        console.print(
            f"{len(sets)} parameter sets x {len(specs)} portfolios x {path.steps} steps in "
            f"{elapsed:.1f} s; report: {folder}/ ({', '.join(p.name for p in written)})"
        )
