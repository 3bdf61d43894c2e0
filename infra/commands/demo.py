"""`spma demo` (make demo): a seeded exchange through the embedded broker, codec and engine."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from infra.broker import BrokerError
from infra.commands.common import fail


def register(app: typer.Typer) -> None:
    """Add `spma demo`."""

    @app.command("demo")
    def demo(
        accounts: int = typer.Option(300, min=1, help="accounts to open"),
        partitions: int = typer.Option(4, min=1, help="partitions of the account topics"),
        deadline: float = typer.Option(170.0, min=10, help="give up after this many seconds"),
    ) -> None:
        """Play a calm hour, a crash and a partial recovery; print what the engine concluded."""
        from streams.demo.session import run_demo

        console = Console()
        try:
            result = run_demo(accounts, partitions, deadline, log=console.print)
        except (BrokerError, TimeoutError, RuntimeError) as exc:
            fail(f"demo failed: {exc}", code=1)
        table = Table(title=f"SPMA demo: {result.accounts} accounts in {result.seconds:.1f} s")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for label, value in (
            ("inputs processed", result.inputs),
            ("margin-status records", result.statuses),
            ("margin calls", result.calls),
            ("liquidation orders", result.orders),
            ("inputs rejected (dlq)", result.rejected),
        ):
            table.add_row(label, f"{value:,}")
        for state, count in sorted(result.states.items()):
            table.add_row(f"accounts {state}", f"{count:,}")
        for und, price in result.prices.items():
            table.add_row(f"{und} final mark", f"{price:,.2f}")
        console.print(table)
