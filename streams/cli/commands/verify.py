"""`spma verify`: check an inclusion proof against a published root, offline (section 13).

Exit 0 and an "OK: ..." line when the proof leads to the root (and total); exit 1 and the reason
when it does not (tampered proof, or JSON that is not a proof); exit 2 when the file cannot be
read or is not JSON, or an argument is unusable.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import typer

from engine.solvency import InclusionProof, ProofError, format_cents, verify_proof
from streams.cli.commands.common import fail, read_json

ROOT_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_total(text: str) -> int:
    """A total in cents: an integer is cents, a number with a decimal point is USD."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if cleaned.upper().endswith("USD"):
        cleaned = cleaned[:-3].strip()
        usd = True
    else:
        usd = "." in cleaned
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        fail(f"--total {text!r}: expected cents (123456) or USD (1234.56)")
    if not value.is_finite() or value < 0:
        fail(f"--total {text!r}: must be a non-negative amount")
    if usd:
        return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if value != value.to_integral_value():
        fail(f"--total {text!r}: cents must be a whole number")
    return int(value)


def register(app: typer.Typer) -> None:
    """Add `spma verify`."""

    @app.command("verify")
    def verify(
        proof_file: Path = typer.Argument(..., help="the proof JSON from `spma prove`"),
        root: str = typer.Argument(..., help="the published root hash (64 hex digits)"),
        total: str | None = typer.Option(
            None, "--total", help="published total: cents (123456) or USD (1234.56)"
        ),
    ) -> None:
        """Check that a proof includes its account in the published root (and total)."""
        if not ROOT_RE.match(root):
            fail(f"root {root!r}: expected 64 hex digits")
        total_cents = parse_total(total) if total is not None else None
        data = read_json(proof_file, "proof")
        try:
            proof = InclusionProof.from_dict(data)
            verify_proof(proof, root.lower(), total_cents)
        except ProofError as exc:
            typer.echo(f"FAILED ({exc.reason.value}): {exc.detail}")
            raise typer.Exit(1) from None
        typer.echo(
            f"OK: account {proof.account} with liability {format_cents(proof.liability_cents)} "
            f"USD is included in root {root.lower()} "
            f"(total {format_cents(proof.total_cents)} USD, epoch {proof.epoch})"
        )
