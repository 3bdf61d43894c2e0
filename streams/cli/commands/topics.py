"""`spma topics create|list|describe|migrate-changelogs`: the catalogue on the configured broker.

`create` fails (exit 2) with the fix spelled out when existing topics have another partition
count than asked: Kafka cannot lower one, and raising it moves keys (accounts) to other
partitions than their state. `describe` compares each topic with the settings (exit 1 when any
differs). `migrate-changelogs` copies the tables' changelogs of a deployment from before they were
put under the prefix (streams/topics/migrate.py).
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.commands.common import fail, load_settings
from streams.topics.admin import TopicResult, create_topics, describe_topics
from streams.topics.catalog import TOPICS
from streams.topics.describe import TopicState, describe


def partition_fix(results: list[TopicResult], asked: int) -> str | None:
    """The message for topics that exist with another partition count than asked (None when
    every one has what the catalogue wants)."""
    off = [r for r in results if r.outcome.startswith("exists-with-")]
    if not off:
        return None
    names = ", ".join(f"{r.topic} ({r.partitions})" for r in off)
    return (
        f"{len(off)} topics exist with other partition counts than asked ({asked} for keyed "
        f"topics, 1 for single-owner ones): {names}. Ask for what they have "
        "(--partitions or SPMA_PARTITIONS), or use new topics under another SPMA_TOPIC_PREFIX; "
        "Kafka cannot lower a partition count, and raising one moves accounts away from their "
        "state"
    )


def _show(results: list[TopicResult]) -> None:
    """Print topics with their partitions and policy."""
    table = Table("topic", "partitions", "cleanup", "outcome")
    for result, spec in zip(results, TOPICS, strict=True):
        table.add_row(result.topic, str(result.partitions), str(spec.cleanup), result.outcome)
    Console().print(table)


def describe_line(state: TopicState) -> str:
    """One topic as the broker has it and whether it matches the settings, on one line (for
    reading and for grep)."""
    if not state.partitions:
        return f"{state.topic}: MISSING"
    configs = " ".join(f"{k}={v}" for k, v in state.configs.items())
    verdict = "matches" if not state.mismatches else "DIFFERS (" + "; ".join(state.mismatches) + ")"
    return (
        f"{state.topic}: partitions {state.partitions}, replication {state.replication}, "
        f"{configs}: {verdict}"
    )


def register(app: typer.Typer) -> None:
    """Add the topics command group."""
    group = typer.Typer(help="Create, list or describe the SPMA topics.", no_args_is_help=True)
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
            results = create_topics(settings, timeout_s=timeout)
        except Exception as exc:  # broker unreachable, refused request
            fail(f"cannot create topics on {settings.bootstrap_servers}: {exc}")
        _show(results)
        fix = partition_fix(results, settings.partitions)
        if fix is not None:
            fail(fix)

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

    @group.command("describe")
    def describe_(
        bootstrap: str | None = typer.Option(
            None, help="bootstrap servers (SPMA_BOOTSTRAP_SERVERS)"
        ),
    ) -> None:
        """Each SPMA topic's partitions, replication and configs on the broker, and whether
        they match the settings (exit 1 when any does not); then the account layout in use
        (streams/scaling/)."""
        from streams.scaling.control import read_layouts

        settings = load_settings(bootstrap_servers=bootstrap)
        try:
            states = describe(settings)
            layouts = read_layouts(settings)
        except Exception as exc:
            fail(f"cannot describe topics on {settings.bootstrap_servers}: {exc}")
        for state in states:
            typer.echo(describe_line(state))
        typer.echo(layouts.summary())
        if any(state.mismatches for state in states):
            raise typer.Exit(1)

    @group.command("migrate-changelogs")
    def migrate_changelogs(
        bootstrap: str | None = typer.Option(
            None, help="bootstrap servers (SPMA_BOOTSTRAP_SERVERS)"
        ),
    ) -> None:
        """With every worker stopped: copy the tables' changelogs from Faust's old names
        ({app_id}-{table}-changelog) to their names under the prefix."""
        from streams.agents.worker import TABLES
        from streams.topics.migrate import MigrationError, migrate

        settings = load_settings(bootstrap_servers=bootstrap)
        if settings.legacy_changelog_names:
            fail("SPMA_LEGACY_CHANGELOG_NAMES is set: the workers use the old names; unset it")
        try:
            done = migrate(settings, TABLES)
        except MigrationError as exc:
            fail(str(exc))
        except Exception as exc:  # broker unreachable, refused request
            fail(f"cannot copy changelogs on {settings.bootstrap_servers}: {exc}", 1)
        for copied in done:
            what = "no old changelog" if copied.records is None else f"{copied.records} records"
            typer.echo(f"{copied.source} -> {copied.target}: {what}")
