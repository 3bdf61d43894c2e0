"""`spma broker`: run the embedded Tansu broker in the foreground."""

from __future__ import annotations

import signal

import typer

from infra.broker import BrokerError, EmbeddedBroker
from infra.commands.common import fail, load_settings
from infra.topics import create_topics


def register(app: typer.Typer) -> None:
    """Add the broker command."""

    @app.command()
    def broker(
        port: int = typer.Option(9092, help="loopback port to listen on (0 = a free one)"),
        topics: bool = typer.Option(True, help="create the SPMA topics once it is up"),
        partitions: int | None = typer.Option(None, help="partitions of keyed topics"),
    ) -> None:
        """Run the embedded Kafka-compatible broker (Tansu, in memory) until Ctrl-C."""
        embedded = EmbeddedBroker(port or None)
        try:
            embedded.start()
        except BrokerError as exc:
            fail(str(exc))
        settings = load_settings(bootstrap_servers=embedded.bootstrap, partitions=partitions)
        typer.echo(f"embedded broker (Tansu) listening on {embedded.bootstrap}")
        if topics:
            created = create_topics(settings)
            typer.echo(f"{len(created)} topics ready ({settings.partitions} partitions keyed)")
        typer.echo(f"export SPMA_BOOTSTRAP_SERVERS={embedded.bootstrap}   # Ctrl-C stops it")
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop via the finally below
        try:
            embedded.wait()
        except KeyboardInterrupt:
            pass
        finally:
            embedded.stop()
