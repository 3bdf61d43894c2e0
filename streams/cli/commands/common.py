"""What the sub-commands share: settings loading and clean failure (a message and exit 2)."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from pydantic import ValidationError

from infra.settings import Settings


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear message to stderr and exit non-zero (never a traceback)."""
    typer.echo(f"spma: error: {message}", err=True)
    raise typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and config file, with CLI overrides; errors exit 2."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        fail(f"invalid setting {field}: {first['msg']}")


def is_tty() -> bool:
    """True when stdout is a terminal (for live views)."""
    return sys.stdout.isatty()
