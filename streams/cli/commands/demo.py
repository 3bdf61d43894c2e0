"""`spma demo` (make demo): a stress scenario end to end on a broker of its own, and a report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from infra.broker import BrokerError
from infra.broker_engine import Engine
from streams.cli.commands.common import fail
from streams.topics.catalog import Topic


def register(app: typer.Typer) -> None:
    """Add `spma demo`."""

    @app.command("demo")
    def demo(
        accounts: int = typer.Option(2000, min=1, help="accounts to open"),
        partitions: int = typer.Option(
            1,
            min=1,
            help="partitions of the account topics (more than 1: the fund's figures may differ "
            "between runs of a seed, README: Same seed, same figures)",
        ),
        stall_window: float = typer.Option(
            60.0,
            min=1,
            help="fail when the pipeline shows no progress (no new output, no advance in event "
            "time, no input committed, no order executed) for this many seconds",
        ),
        cap: float = typer.Option(
            900.0, min=10, help="fail a run still going after this many seconds (a safety cap)"
        ),
        reports: Path = typer.Option(Path("reports"), help="where the report folder goes"),
        seed: int = typer.Option(
            7, help="the exchange's seed: the same seed gives the same figures on every run"
        ),
        engine: Engine = typer.Option(
            Engine.AUTO,
            help="broker to run it on: kafka (Apache Kafka, needs Java 17 and Maven), tansu "
            "(embedded) or auto (Kafka where Java 17 and Maven are at hand, else Tansu)",
        ),
    ) -> None:
        """A calm hour, a crash and a recovery through the engine; a summary and a report."""
        from confluent_kafka import KafkaException

        from streams.tools.demo.session import Pace, run_demo
        from streams.tools.demo.view import LiveView

        console = Console()
        view = LiveView(console)
        try:
            pace = Pace(stall_window_s=stall_window, cap_s=cap)
            result = run_demo(
                accounts, partitions, pace, reports, view, console.print, engine=engine, seed=seed
            )
        except (BrokerError, TimeoutError, RuntimeError, KafkaException) as exc:
            view.stop()
            fail(f"demo failed: {exc}")
        view.stop()
        table = Table(title=f"SPMA demo, seed {seed}: {result.accounts:,} accounts")
        table.add_column("figure")
        table.add_column("value", justify="right")
        c = result.counts
        for label, value in (
            ("inputs (incl. fills from the simulator)", result.inputs),
            ("margin-status records", c.get(Topic.MARGIN_STATUS, 0)),
            ("margin calls", c.get(Topic.MARGIN_CALLS, 0)),
            ("liquidation orders", c.get(Topic.LIQUIDATIONS, 0)),
            ("liquidation fills", result.simulator.get("fills", 0)),
            ("ADL orders", c.get(Topic.ADL, 0)),
            ("insurance-fund events", c.get(Topic.INSURANCE_FUND, 0)),
            ("inputs rejected (dlq)", c.get(Topic.DLQ, 0)),
        ):
            table.add_row(label, f"{value:,}")
        table.add_row("insurance fund balance (USD)", f"{result.fund_balance:,.2f}")
        for state, count in sorted(result.states.items()):
            table.add_row(f"accounts {state}", f"{count:,}")
        for und, price in result.prices.items():
            table.add_row(f"{und} final mark", f"{price:,.2f}")
        console.print(table)
        # The run's length is not in the table: a seed's table is the same on every run.
        files = "chart.png, worst_cases.json, counts.json"
        typer.echo(f"ran {result.seconds:.1f} s; report: {result.report}/ ({files})")
