"""`spma margin`: the offline what-if calculator on JSON files (margin-model.md sections 1-8).

Prints one JSON object (default) or a table a risk officer can read (`--format table`). Bad files
get a message naming the field and exit 2, never a traceback.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from engine.margin import AccountMargin
from engine.market import MarketDataError
from engine.offline import OfflineError, margin_from_mappings
from engine.params import RiskParams
from engine.portfolio import PortfolioError
from streams.cli.commands.common import fail, first_error, read_json


class OutputFormat(StrEnum):
    """How the result is printed."""

    JSON = "json"
    TABLE = "table"


def load_params(path: Path | None, preset: str | None) -> RiskParams:
    """The parameter set from a file, a preset, or the defaults."""
    try:
        if path is not None:
            return RiskParams.load(path)
        return RiskParams.preset(preset) if preset else RiskParams()
    except ValidationError as exc:
        field, message = first_error(exc)
        fail(f"params: {field or 'params'}: {message}")
    except (OSError, ValueError) as exc:
        fail(f"params: {exc}")


COMPONENT_LABELS = (
    ("worst_loss", "worst loss"),
    ("directional", "directional (signed)"),
    ("two_sided", "two-sided"),
    ("short_option", "short-option contingency"),
    ("delta", "delta contingency"),
    ("basis", "basis contingency"),
    ("contingencies", "contingencies"),
    ("liquidity_addon", "liquidity add-on"),
    ("delta_notional", "net delta (USD)"),
)


def _money(x: float | None) -> str:
    """A USD figure for the table."""
    return "inf" if x is None else f"{x:,.2f}"


SUMMARY_FIELDS = (
    "equity",
    "equity_mm",
    "equity_im",
    "im",
    "mm",
    "ratio_mm",
    "scenario_requirement",
    "directional_total",
    "es99",
    "var99",
    "risk_requirement",
    "liquidity_addon",
)
"""The AccountMargin figures of the summary table, in order."""


def render_table(result: AccountMargin, console: Console) -> None:
    """The margin of one account as tables: summary, by underlying, by collateral asset."""
    summary = Table(title=f"account {result.account}: {result.state}", show_header=False)
    for key in SUMMARY_FIELDS:
        value: float | None = getattr(result, key)
        summary.add_row(key, f"{value:.4f}" if key == "ratio_mm" and value else _money(value))
    summary.add_row("params", result.params_version)
    console.print(summary)
    names = list(result.underlyings)
    comps = Table("component", *names, title="by underlying")
    for key, label in COMPONENT_LABELS:
        comps.add_row(label, *(_money(result.underlyings[u][key]) for u in names))
    console.print(comps)
    hair = Table(
        "asset",
        "balance",
        "price",
        "haircut MM",
        "haircut IM",
        "deduction MM",
        title="collateral",
    )
    for asset, h in result.haircuts.items():
        hair.add_row(
            asset,
            f"{h['balance']:,.6g}",
            _money(h["price"]),
            f"{h['haircut']:.2%}",
            f"{h['haircut_im']:.2%}",
            _money(h["deduction_mm"]),
        )
    console.print(hair)


def register(app: typer.Typer) -> None:
    """Add `spma margin`."""

    @app.command("margin")
    def margin(
        portfolio: Path = typer.Option(..., "--portfolio", help="portfolio JSON file"),
        market: Path = typer.Option(..., "--market", help="market JSON file"),
        params: Path | None = typer.Option(None, "--params", help="risk parameters (.json/.toml)"),
        preset: str | None = typer.Option(
            None, "--preset", help="parameter preset (span16, derive-pmrm2)"
        ),
        output: OutputFormat = typer.Option(OutputFormat.JSON, "--format", help="json or table"),
    ) -> None:
        """Compute one account's IM, MM, equities, state and every component, offline."""
        risk = load_params(params, preset)
        port_data = read_json(portfolio, "portfolio")
        market_data = read_json(market, "market")
        try:
            result = margin_from_mappings(port_data, market_data, risk)
        except PortfolioError as exc:
            fail(f"portfolio {portfolio}: {exc}")
        except MarketDataError as exc:
            fail(f"market {market}: {exc}")
        except OfflineError as exc:
            fail(f"portfolio {portfolio} against market {market}: {exc}")
        if output is OutputFormat.TABLE:
            render_table(result, Console())
        else:
            typer.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
