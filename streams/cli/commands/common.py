"""What the sub-commands share: settings loading, file reading and clean failure (a message and
exit 2)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn, TypedDict, Unpack, cast

import orjson
import typer
from pydantic import ValidationError

from infra.config_check import ConfigError, check_config_file, unknown_variables
from infra.settings import Settings, config_file


class SettingsOverrides(TypedDict, total=False):
    """The settings a sub-command's options override; None (an option not given) is ignored."""

    bootstrap_servers: str | None
    web_port: int | None
    partitions: int | None


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear message to stderr and exit non-zero (never a traceback)."""
    typer.echo(f"spma: error: {message}", err=True)
    raise typer.Exit(code)


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The dotted field and the message of a validation error's first complaint."""
    first = exc.errors()[0]
    return ".".join(str(p) for p in first["loc"]), first["msg"]


def warn(message: str) -> None:
    """Print one warning line to stderr."""
    typer.echo(f"spma: warning: {message}", err=True)


def load_settings(**overrides: Unpack[SettingsOverrides]) -> Settings:
    """Settings from the environment and config file, with CLI overrides: the one way every
    sub-command loads them, so that each warns once of an SPMA_ variable that is no setting
    and exits 2 with one line on a malformed file, an unknown key or a bad value."""
    for line in unknown_variables(os.environ):
        warn(line)
    given = cast(SettingsOverrides, {k: v for k, v in overrides.items() if v is not None})
    try:
        check_config_file(config_file(), named=bool(os.environ.get("SPMA_CONFIG")))
        return Settings(**given)
    except ConfigError as exc:
        fail(str(exc))
    except ValidationError as exc:
        field, message = first_error(exc)
        fail(f"invalid setting {field}: {message}")


def read_file(path: Path, what: str) -> bytes:
    """A file's bytes, or exit 2 with a message naming it (``what`` says which file it is)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"{what} file {path}: {exc.strerror or exc}")


def read_json(path: Path, what: str) -> Any:
    """A JSON file parsed (any JSON value: the caller checks its shape), or exit 2 with a
    message naming the file."""
    raw = read_file(path, what)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        fail(f"{what} file {path}: not valid JSON ({exc})")


def is_tty() -> bool:
    """True when stdout is a terminal (for live views)."""
    return sys.stdout.isatty()
