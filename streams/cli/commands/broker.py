"""`spma broker`: a broker on loopback in the foreground (Apache Kafka or the embedded Tansu)."""

from __future__ import annotations

import signal

import typer

from infra.broker import BrokerError
from infra.broker_engine import Engine, start_broker
from streams.cli.commands.common import fail, load_settings
from streams.topics.admin import create_topics

_NAMES = {"kafka": "Apache Kafka", "tansu": "Tansu (embedded, in memory)"}


def register(app: typer.Typer) -> None:
    """Add the broker command."""

    @app.command()
    def broker(
        engine: Engine = typer.Option(
            Engine.AUTO,
            help="kafka: Apache Kafka from Maven Central (needs Java 17 and Maven); tansu: the "
            "embedded broker; auto: Kafka where Java 17 and Maven are at hand, else Tansu",
        ),
        port: int = typer.Option(9092, help="loopback port to listen on (0 = a free one)"),
        topics: bool = typer.Option(True, help="create the SPMA topics once it is up"),
        partitions: int | None = typer.Option(None, help="partitions of keyed topics"),
    ) -> None:
        """Run a single-node broker on loopback until Ctrl-C; it prints which one it started."""
        try:
            running = start_broker(engine, port or None)
        except BrokerError as exc:
            fail(str(exc))
        settings = load_settings(bootstrap_servers=running.bootstrap, partitions=partitions)
        name = _NAMES.get(running.engine, running.engine)
        typer.echo(f"{name} {running.version} listening on {running.bootstrap}")
        if topics:
            created = create_topics(settings)
            typer.echo(f"{len(created)} topics ready ({settings.partitions} partitions keyed)")
        typer.echo(f"export SPMA_BOOTSTRAP_SERVERS={running.bootstrap}   # Ctrl-C stops it")
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop via the finally below
        try:
            running.wait()
        except KeyboardInterrupt:
            pass
        finally:
            running.stop()
