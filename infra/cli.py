"""The `spma` command line: one program, a sub-command per job (streams.md, Operations)."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="spma",
    help="SPMA: real-time portfolio margin for crypto derivatives on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

COMMANDS = (
    "broker",
    "topics",
    "margin",
    "demo",
    "worker",
    "simulate",
    "loadgen",
    "prove",
    "verify",
)


def _register_all() -> None:
    """Import each sub-command module present and let it add its commands."""
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"infra.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"infra.commands.{name}":
                raise
            continue
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
