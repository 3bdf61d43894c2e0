"""The `spma` command line: one program, a sub-command per job (streams.md, Operations)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

from streams.cli.commands import (
    backtest,
    broker,
    demo,
    loadgen,
    margin,
    params,
    prove,
    reproduce,
    scale,
    simulate,
    topics,
    verify,
    worker,
)

app = typer.Typer(
    name="spma",
    help="SPMA: real-time portfolio margin for crypto derivatives on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

COMMANDS = (
    broker,
    topics,
    params,
    margin,
    backtest,
    reproduce,
    demo,
    worker,
    scale,
    simulate,
    loadgen,
    prove,
    verify,
)
"""Each sub-command module, in the order of ``spma --help``; each exposes register(app)."""

DISTRIBUTION = "spma"
"""The project's name in pyproject.toml: its installed metadata holds the version."""


def installed_version() -> str:
    """The version of the installed distribution ('unknown' when it is not installed)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def show_version(given: bool) -> None:
    """--version: print the program's name and version, then exit."""
    if given:
        typer.echo(f"{DISTRIBUTION} {installed_version()}")
        raise typer.Exit()


@app.callback()
def root(
    _version: bool = typer.Option(
        False,
        "--version",
        callback=show_version,
        is_eager=True,
        help="print the version and exit",
    ),
) -> None:
    """SPMA: real-time portfolio margin for crypto derivatives on Kafka."""


for _command in COMMANDS:
    _command.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
