"""`spma loadgen`: synthetic fills, prices and depth at a given rate, for load tests.

It lists the demo exchange's instruments, publishes a first market and funds the accounts, then
sends load events at the requested rate until the count or the duration is reached, and prints
what it sent by topic and the rate it achieved (tools/loadgen.py). Workers need not be running:
the records wait on the topics.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.commands.common import fail, load_settings


def _mix(text: str) -> tuple[float, float, float]:
    """'80,15,5' -> shares of fills, oracle prices and depth (exit 2 when malformed)."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        fail(f"--mix wants three numbers 'fills,prices,depth', got {text!r}")
    if len(parts) != 3:
        fail(f"--mix wants three numbers 'fills,prices,depth', got {text!r}")
    return parts[0], parts[1], parts[2]


def register(app: typer.Typer) -> None:
    """Add `spma loadgen`."""

    @app.command("loadgen")
    def loadgen(
        rate: float = typer.Option(500.0, help="load events per second"),
        accounts: int = typer.Option(1000, help="accounts to spread the fills over"),
        duration: float | None = typer.Option(None, help="send for this many seconds"),
        count: int | None = typer.Option(None, help="send this many load events"),
        mix: str = typer.Option("80,15,5", help="shares of fills, oracle prices, depth"),
        seed: int = typer.Option(7, help="random seed"),
        setup: bool = typer.Option(True, help="list instruments, publish a market, fund accounts"),
        bootstrap: str | None = typer.Option(None, help="bootstrap servers"),
    ) -> None:
        """Send synthetic fills, prices and depth at a steady rate; print what was sent."""
        from confluent_kafka import KafkaException

        from streams.tools.loadgen import LoadPlan, run_load

        try:
            plan = LoadPlan(rate, accounts, count, duration, _mix(mix), seed, setup)
        except ValueError as exc:
            fail(str(exc))
        settings = load_settings(bootstrap_servers=bootstrap)
        console = Console(stderr=True)
        try:
            report = run_load(settings, plan, log=console.print)
        except KafkaException as exc:
            fail(f"the broker at {settings.bootstrap_servers} did not answer: {exc}", code=1)
        table = Table(title=f"spma loadgen: {report.events:,} events in {report.seconds:.1f} s")
        table.add_column("topic")
        table.add_column("records", justify="right")
        for topic, n in sorted(report.setup.items()):
            table.add_row(f"{topic} (setup)", f"{n:,}")
        for topic, n in sorted(report.sent.items()):
            table.add_row(topic, f"{n:,}")
        table.add_row("rate achieved (events/s)", f"{report.rate:,.1f}")
        Console().print(table)
