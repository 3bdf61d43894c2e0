"""`spma prove`: an account's proof of liabilities (margin-model.md section 13), offline.

Builds the epoch's Merkle-sum tree from a JSON file of equities in USD ({"account": usd, ...};
liability = max(0, equity) in cents) and prints the account's inclusion proof as JSON (or writes
it with --out); the root, total and account count go to stderr. Errors exit 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import typer

from engine.solvency import (
    InclusionProof,
    UnknownAccountError,
    format_cents,
    prove_from_liabilities,
)
from infra.commands.common import fail

MIN_SECRET_BYTES = 16


def read_json_file(path: Path, what: str) -> Any:
    """Parse a JSON file or fail (exit 2) with a message naming it."""
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        fail(f"{what} file {path}: {exc.strerror or exc}")
    except orjson.JSONDecodeError as exc:
        fail(f"{what} file {path}: not valid JSON ({exc})")


def parse_secret(text: str, what: str) -> bytes:
    """An epoch secret from hex text (whitespace ignored), at least 16 bytes."""
    try:
        secret = bytes.fromhex("".join(text.split()))
    except ValueError:
        fail(f"{what}: the epoch secret must be hex")
    if len(secret) < MIN_SECRET_BYTES:
        fail(f"{what}: the epoch secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def load_secret(secret_file: Path | None, secret_hex: str | None) -> bytes:
    """The epoch secret from --secret-file (hex text, or raw bytes if not hex) or --secret."""
    if secret_file is not None and secret_hex is not None:
        fail("give either --secret-file or --secret, not both")
    if secret_file is not None:
        try:
            raw = secret_file.read_bytes()
        except OSError as exc:
            fail(f"secret file {secret_file}: {exc.strerror or exc}")
        try:
            text = raw.decode("ascii")
            bytes.fromhex("".join(text.split()))
        except (UnicodeDecodeError, ValueError):
            if len(raw) < MIN_SECRET_BYTES:
                fail(f"secret file {secret_file}: at least {MIN_SECRET_BYTES} bytes needed")
            return raw
        return parse_secret(text, f"secret file {secret_file}")
    if secret_hex is not None:
        return parse_secret(secret_hex, "--secret")
    fail("no epoch secret: give --secret-file FILE or --secret HEX (or set SPMA_POL_SECRET)")


def parse_liabilities(data: Any, source: str) -> Mapping[str, float]:
    """Check the {"account": equity_usd, ...} shape of a liabilities file."""
    if not isinstance(data, dict):
        fail(f"liabilities file {source}: expected an object of account -> equity in USD")
    for account, usd in data.items():
        if isinstance(usd, bool) or not isinstance(usd, int | float):
            fail(f"liabilities file {source}: account {account!r}: {usd!r} is not a number")
    return data


def register(app: typer.Typer) -> None:
    """Add `spma prove`."""

    @app.command("prove")
    def prove(
        account: str = typer.Argument(..., help="the account to prove"),
        liabilities: Path = typer.Option(
            ..., "--liabilities", help='JSON file {"account": equity_usd, ...}'
        ),
        epoch: int = typer.Option(..., "--epoch", min=0, help="proof epoch"),
        secret_file: Path | None = typer.Option(
            None, "--secret-file", help="file with the epoch secret (hex, or raw bytes)"
        ),
        secret: str | None = typer.Option(
            None, "--secret", envvar="SPMA_POL_SECRET", help="the epoch secret as hex"
        ),
        out: Path | None = typer.Option(None, "--out", help="write the proof here, not stdout"),
    ) -> None:
        """Print an account's inclusion proof in the epoch's Merkle-sum tree of liabilities."""
        key = load_secret(secret_file, secret)
        book = parse_liabilities(read_json_file(liabilities, "liabilities"), str(liabilities))
        try:
            proof, root_hex, total = prove_from_liabilities(book, account, epoch, key)
        except UnknownAccountError:
            fail(f"account {account!r} is not in {liabilities}")
        except ValueError as exc:
            fail(f"liabilities file {liabilities}: {exc}")
        write_proof(proof, out)
        typer.echo(
            f"root {root_hex} total {total} cents ({format_cents(total)} USD) "
            f"over {len(book)} accounts, epoch {epoch}",
            err=True,
        )


def write_proof(proof: InclusionProof, out: Path | None) -> None:
    """The proof JSON to a file or stdout."""
    text = proof.to_json() + b"\n"
    if out is None:
        typer.echo(text.decode(), nl=False)
        return
    try:
        out.write_bytes(text)
    except OSError as exc:
        fail(f"proof file {out}: {exc.strerror or exc}")
