"""`spma topics create|list`: the topic catalogue on the configured broker."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.commands.common import fail, load_settings
from streams.topics.admin import TopicResult, create_topics, describe_topics
from streams.topics.catalog import TOPICS


def _show(results: list[TopicResult]) -> None:
    """Print topics with their partitions and policy."""
    table = Table("topic", "partitions", "cleanup", "outcome")
    for result, spec in zip(results, TOPICS, strict=True):
        table.add_row(result.topic, str(result.partitions), str(spec.cleanup), result.outcome)
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the topics command group."""
    group = typer.Typer(help="Create or list the SPMA topics.", no_args_is_help=True)
    app.add_typer(group, name="topics")

    @group.command("create")
    def create(
        bootstrap: str | None = typer.Option(
            None, help="bootstrap servers (SPMA_BOOTSTRAP_SERVERS)"
        ),
        partitions: int | None = typer.Option(None, help="partitions of keyed topics"),
        timeout: float = typer.Option(15.0, help="seconds to wait for the broker"),
    ) -> None:
        """Create every missing topic (idempotent) with the configured partitions and policies."""
        settings = load_settings(bootstrap_servers=bootstrap, partitions=partitions)
        try:
            _show(create_topics(settings, timeout_s=timeout))
        except Exception as exc:  # broker unreachable, refused request
            fail(f"cannot create topics on {settings.bootstrap_servers}: {exc}")

    @group.command("list")
    def list_(
        bootstrap: str | None = typer.Option(
            None, help="bootstrap servers (SPMA_BOOTSTRAP_SERVERS)"
        ),
    ) -> None:
        """Show each SPMA topic and its partition count on the broker."""
        settings = load_settings(bootstrap_servers=bootstrap)
        try:
            _show(describe_topics(settings, timeout_s=15.0))
        except Exception as exc:
            fail(f"cannot reach {settings.bootstrap_servers}: {exc}")
