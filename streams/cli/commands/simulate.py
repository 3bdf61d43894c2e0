"""`spma simulate`: play a crash through Kafka and be the matching engine for what comes back.

It publishes a seeded exchange and a crash (streams/tools/simulator/scenario.py) to the configured
broker, executes the liquidation and ADL orders the workers emit (price impact from the depth
curve, limits respected, the liquidation fee charged) and publishes the fills, flagged
LIQUIDATION or ADL, until the loop is quiet. Workers must be running (`spma worker`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from streams.cli.commands.common import fail, load_settings


def register(app: typer.Typer) -> None:
    """Add `spma simulate`."""

    @app.command("simulate")
    def simulate(
        accounts: int = typer.Option(2000, min=1, help="accounts to open"),
        crash: float = typer.Option(0.35, min=0.0, max=0.95, help="BTC fall over the crash"),
        steps: int = typer.Option(12, min=1, help="legs of the crash"),
        minutes: float = typer.Option(60.0, min=1.0, help="event time the crash covers"),
        depth_floor: float = typer.Option(0.10, min=0.01, max=1.0, help="depth left at the end"),
        quiet: float = typer.Option(4.0, min=0.5, help="seconds without orders that end a leg"),
        holds: int = typer.Option(8, min=0, help="extra quiet markets to let the loop settle"),
    ) -> None:
        """Seed an exchange, crash it, and fill the liquidation and ADL orders that result."""
        from streams.tools.simulator.runner import SimulatorLoop
        from streams.tools.simulator.scenario import CrashScenario

        settings = load_settings()
        scenario = CrashScenario(accounts, crash, steps, minutes * 60.0 / steps, depth_floor)
        start = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(
            seconds=scenario.duration_s + 600
        )
        console = Console(stderr=True)
        loop = SimulatorLoop(settings, group=settings.app_id)  # waits for the workers' group
        try:
            ex = scenario.seed(start)
            loop.seed(ex.inputs)
            console.print(f"seeded {accounts} accounts ({len(ex.inputs):,} inputs)")
            for k in range(steps):
                loop.publish(scenario.step(ex, k))
                seen = loop.pump(quiet_s=quiet)
                console.print(f"leg {k + 1}/{steps}: BTC {ex.prices['BTC']:,.0f}, {seen} orders")
            for _ in range(holds):
                loop.publish(scenario.hold(ex))
                if loop.pump(quiet_s=quiet) == 0:
                    break
        except KafkaException as exc:
            fail(f"the broker at {settings.bootstrap_servers} did not answer: {exc}", code=1)
        except TimeoutError as exc:
            fail(f"{exc} (is `spma worker` running with app id {settings.app_id}?)", code=1)
        finally:
            loop.consumer.close()
        table = Table(title="spma simulate")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for label, value in sorted(loop.stats.items()):
            table.add_row(label, f"{value:,}")
        for label, value in sorted(loop.engine.counts.items()):
            table.add_row(f"matching: {label}", f"{value:,}")
        Console().print(table)
