"""`spma scale --partitions N`: raise the account partition count of a running deployment
(streams/scaling/); --dry-run prints the plan, --abort rolls back a scale under way."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from streams.cli.commands.common import fail, load_settings


def say(line: str) -> None:
    """One progress line, time-stamped, on stdout."""
    now = datetime.now(tz=UTC).strftime("%H:%M:%S")
    typer.echo(f"{now} scale: {line}")


def register(app: typer.Typer) -> None:
    """Add `spma scale`."""

    @app.command("scale")
    def scale_command(
        partitions: int = typer.Option(0, help="the new account partition count"),
        dry_run: bool = typer.Option(False, help="print the plan, change nothing"),
        abort: bool = typer.Option(False, help="roll back a scale under way (before its switch)"),
        drain_timeout: float = typer.Option(120.0, help="seconds the workers get to drain"),
        bootstrap: str | None = typer.Option(None, help="bootstrap servers"),
    ) -> None:
        """Raise the account partition count while the exchange keeps trading."""
        from streams.scaling.command import abort as abort_scale
        from streams.scaling.command import plan_scale, scale
        from streams.scaling.errors import ScaleError

        settings = load_settings(bootstrap_servers=bootstrap)
        try:
            if abort:
                abort_scale(settings, say)
                return
            if partitions < 1:
                fail("--partitions N: the new account partition count")
            if dry_run:
                for line in plan_scale(settings, partitions)[1].lines():
                    typer.echo(line)
                return
            scale(settings, partitions, say, drain_timeout)
        except ScaleError as exc:
            fail(str(exc))
