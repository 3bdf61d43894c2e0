"""`spma margin`: the offline what-if calculator on JSON files (margin-model.md sections 1-8).

Prints one JSON object (default) or a table a risk officer can read (`--format table`): the
account's margin and its explanation (engine/explain.py: the shape the account view serves).
With ``--trade INSTRUMENT:QTY@PRICE`` (signed qty, + buys), ``--transfer ASSET:AMOUNT``,
``--move BTC:-10%`` or ``--vol-move BTC:+20%`` (each repeatable) it prints the account before,
after and the change (engine/whatif.py; the what-if view's answer). Bad files or values get a
message naming the field or option and exit 2, never a traceback.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from engine.explain import Explanation
from engine.margin import AccountMargin
from engine.market import MarketDataError, market_from_mapping
from engine.params import RiskParams
from engine.portfolio import PortfolioError, portfolio_from_mapping
from engine.whatif import Changes, TradeFill, Transfer, WhatIfError, WhatIfResult, what_if
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


def _number(option: str, text: str, value: str) -> float:
    """A finite number of an option's value (a percentage when it ends with %)."""
    try:
        number = float(value[:-1]) / 100.0 if value.endswith("%") else float(value)
    except ValueError:
        fail(f"{option} {text!r}: {value!r} is not a number")
    if not math.isfinite(number):
        fail(f"{option} {text!r}: {value!r} must be finite")
    return number


def parse_trade(text: str) -> TradeFill:
    """INSTRUMENT:QTY@PRICE (signed qty, + buys)."""
    name, colon, rest = text.rpartition(":")
    qty, at, price = rest.partition("@")
    if not (name and colon and at):
        fail(f"--trade {text!r}: must be INSTRUMENT:QTY@PRICE (e.g. BTC-PERPETUAL:-0.5@100000)")
    return TradeFill(name, _number("--trade", text, qty), _number("--trade", text, price))


def parse_pair(option: str, text: str) -> tuple[str, float]:
    """NAME:VALUE (a move in % or as a fraction; an amount)."""
    name, colon, value = text.rpartition(":")
    if not (name and colon):
        fail(f"{option} {text!r}: must be NAME:VALUE (e.g. BTC:-10%)")
    return name, _number(option, text, value)


def parse_changes(
    trades: list[str], transfers: list[str], moves: list[str], vol_moves: list[str]
) -> Changes:
    """The what-if of the options."""
    return Changes(
        tuple(parse_trade(t) for t in trades),
        tuple(Transfer(*parse_pair("--transfer", t)) for t in transfers),
        dict(parse_pair("--move", m) for m in moves),
        dict(parse_pair("--vol-move", v) for v in vol_moves),
    )


def render_explained(shown: Explanation, console: Console) -> None:
    """The margin tables, then the positions, each underlying's worst scenarios, the part that
    binds and what restores the account."""
    render_table(shown.margin, console)
    held = Table("instrument", "qty", "entry", "mark", "value", "PnL", title="positions")
    for column in held.columns:
        column.no_wrap = True  # names and figures are read whole
    for p in shown.positions:
        held.add_row(
            p["instrument"],
            f"{p['qty']:,.6g}",
            _money(p["entry"]),
            _money(p["mark"]),
            _money(p["value"]),
            _money(p["pnl"]),
        )
    console.print(held)
    worst = Table("underlying", "move", "price", "vol", "loss", title="worst scenarios")
    for c in shown.components:
        for w in c["worst_scenarios"]:
            worst.add_row(
                c["underlying"],
                f"{w['move']:+.1%}",
                _money(w["price"]),
                w["vol"],
                _money(w["loss"]),
            )
    console.print(worst)
    binding, restore = shown.binding, shown.restore
    console.print(
        f"binding: {binding['requirement']} ({_money(binding['risk_requirement'])}), "
        f"largest worst loss on {binding['underlying'] or 'none'}"
    )
    deposit = restore["deposit_to_im"]
    console.print(f"deposit to reach IM: {_money(deposit['amount'])} {deposit['asset']}")
    plan = restore["liquidation"]
    if plan is not None:
        orders = ", ".join(
            f"{o['side']} {abs(o['qty']):,.6g} {o['instrument']}" for o in plan["orders"]
        )
        console.print(f"the liquidation planner would: {orders or 'close nothing'}")


def render_what_if(result: WhatIfResult, console: Console) -> None:
    """Before, after and the change as tables."""
    for title, shown in (("before", result.before), ("after", result.after)):
        console.print(f"[bold]{title}[/bold]")
        render_explained(shown, console)
    change = Table("figure", "before", "after", "change", title="change")
    for key, delta in result.change().items():
        b, a = getattr(result.before.margin, key), getattr(result.after.margin, key)
        change.add_row(key, _money(b), _money(a), _money(delta))
    change.add_row("state", result.before.margin.state, result.after.margin.state, "")
    console.print(change)


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
        trade: list[str] = typer.Option(
            [], "--trade", help="what-if fill INSTRUMENT:QTY@PRICE (signed qty; repeatable)"
        ),
        transfer: list[str] = typer.Option(
            [], "--transfer", help="what-if transfer ASSET:AMOUNT (signed; repeatable)"
        ),
        move: list[str] = typer.Option(
            [], "--move", help="what-if price move UNDERLYING:-10% (repeatable)"
        ),
        vol_move: list[str] = typer.Option(
            [], "--vol-move", help="what-if vol move UNDERLYING:+20% (repeatable)"
        ),
    ) -> None:
        """Compute one account's IM, MM, equities, state and every component, offline, and
        what hypothetical trades, transfers and moves would make of them."""
        risk = load_params(params, preset)
        changes = parse_changes(trade, transfer, move, vol_move)
        port_data = read_json(portfolio, "portfolio")
        market_data = read_json(market, "market")
        try:
            parsed = portfolio_from_mapping(port_data)
            snapshot = market_from_mapping(market_data)
            result = what_if(parsed, snapshot, risk, changes)
        except PortfolioError as exc:
            fail(f"portfolio {portfolio}: {exc}")
        except MarketDataError as exc:
            fail(f"market {market}: {exc}")
        except WhatIfError as exc:
            where = WHAT_IF_OPTIONS.get(exc.field.partition("[")[0].partition(".")[0])
            fail(
                f"{where}: {exc}"
                if where
                else f"portfolio {portfolio} against market {market}: {exc}"
            )
        if output is OutputFormat.TABLE:
            console = Console(width=max(Console().width, TABLE_WIDTH))
            if changes == Changes():
                render_explained(result.before, console)
            else:
                render_what_if(result, console)
            return
        if changes == Changes():
            shown = {**result.before.margin.to_dict(), **result.before.to_dict()}
        else:
            shown = {"account": parsed.account, **result.to_dict()}
        typer.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())


TABLE_WIDTH = 100
"""Columns the tables take at least (a pipe's 80 would cut figures of the positions)."""
WHAT_IF_OPTIONS = {
    "fills": "--trade",
    "transfers": "--transfer",
    "moves": "--move",
    "vol_moves": "--vol-move",
}
"""The option of each what-if field (an error names the option)."""
