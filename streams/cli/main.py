"""The `spma` command line: one program, a sub-command per job (streams.md, Operations)."""

from __future__ import annotations

import typer

from streams.cli.commands import (
    broker,
    demo,
    loadgen,
    margin,
    params,
    prove,
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

COMMANDS = (broker, topics, params, margin, demo, worker, simulate, loadgen, prove, verify)
"""Each sub-command module, in the order of ``spma --help``; each exposes register(app)."""

for _command in COMMANDS:
    _command.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
