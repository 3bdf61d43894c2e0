"""`spma params publish|show`: the risk-parameter set on the risk-params topic.

`publish FILE` checks the file as a parameter set (engine/params.py) and refuses a version the
workers would refuse as stale, then produces it and waits for the broker's acknowledgement;
`show` prints the set in force, as the market agent finds it on the topic (streams/tools/params.py).
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from engine.params import RiskParams
from infra.settings import Settings
from streams.cli.commands.common import fail, first_error, load_settings


def read_params(path: Path) -> RiskParams:
    """The parameter set of a JSON or TOML file, or exit 2 with one line naming the file and
    the field."""
    try:
        return RiskParams.load(path)
    except ValidationError as exc:
        field, message = first_error(exc)
        fail(f"params file {path}: {field or 'the set'}: {message}")
    except OSError as exc:
        fail(f"params file {path}: {exc.strerror or exc}")
    except ValueError as exc:  # TOML syntax
        fail(f"params file {path}: {exc}")


def publish_if_newer(settings: Settings, params: RiskParams) -> str | None:
    """Publish the set when its version is newer than the newest of its name on the topic and
    return None; else return why it is refused (nothing sent). A broker that does not answer
    or refuses the record exits 1."""
    from confluent_kafka import KafkaException

    from streams.tools.params import publish, read_live, stale_reason

    topic = settings.topic("risk-params")
    try:
        reason = stale_reason(params, read_live(settings))
        if reason is None:
            publish(settings, params)
    except KafkaException as exc:
        fail(f"cannot publish to {topic} on {settings.bootstrap_servers}: {exc}", 1)
    return reason


def register(app: typer.Typer) -> None:
    """Add the params command group."""
    group = typer.Typer(help="Publish or show the risk-parameter set.", no_args_is_help=True)
    app.add_typer(group, name="params")

    @group.command("publish")
    def publish_(
        file: Path = typer.Argument(..., help="the parameter set, JSON or TOML"),
        bootstrap: str | None = typer.Option(None, help="bootstrap servers"),
    ) -> None:
        """Check a parameter set and publish it; a version not newer than the live one is
        refused."""
        params = read_params(file)
        settings = load_settings(bootstrap_servers=bootstrap)
        reason = publish_if_newer(settings, params)
        if reason is not None:
            fail(f"params file {file}: refused: {reason}")
        typer.echo(f"published {params.name}@{params.version} on {settings.topic('risk-params')}")

    @group.command("show")
    def show(
        as_json: bool = typer.Option(False, "--json", help="print the whole set as JSON"),
        bootstrap: str | None = typer.Option(None, help="bootstrap servers"),
    ) -> None:
        """Print the set in force (its name and version), read from the risk-params topic."""
        from confluent_kafka import KafkaException

        from streams.tools.params import read_live

        settings = load_settings(bootstrap_servers=bootstrap)
        try:
            live = read_live(settings)
        except KafkaException as exc:
            fail(f"cannot read {settings.topic('risk-params')}: {exc}", 1)
        if as_json:
            typer.echo(live.params.to_json())
            return
        since = (
            "the defaults: no set published"
            if live.record is None
            else (f"published {live.record.ts.isoformat()}")
        )
        typer.echo(f"{live.params.name} version {live.params.version} ({since})")
