"""`spma prove`: an account's proof of liabilities (margin-model.md section 13).

Offline (``--liabilities FILE --epoch N``): builds the epoch's Merkle-sum tree from a JSON file of
equities in USD ({"account": usd, ...}; liability = max(0, equity) in cents) and prints the
account's inclusion proof as JSON (or writes it with --out); the root, total and account count go
to stderr.

From the stream (``--from-stream``, the operator's tool): reads the partition roots the workers
published on solvency-proofs and the leaves they kept in the portfolios table's changelog
(accounts/proofs.py), rebuilds the account's partition tree with the secret, checks it against the
published root, and prints the proof against the combined root (the top tree over every
partition's root) of the latest epoch (or ``--epoch``); the combined root and total go to stderr.
Errors exit 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from engine.solvency import (
    InclusionProof,
    UnknownAccountError,
    format_cents,
    prove_from_liabilities,
)
from infra.settings import MIN_SECRET_BYTES, hex_secret
from streams.cli.commands.common import fail, load_settings, read_file, read_json
from streams.topics.catalog import Topic


def parse_secret(text: str, what: str) -> bytes:
    """An epoch secret from hex text (whitespace ignored), at least 16 bytes."""
    try:
        secret = hex_secret(text)
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
        raw = read_file(secret_file, "secret")
        try:
            text = raw.decode("ascii")
            hex_secret(text)
        except ValueError:  # UnicodeDecodeError included: raw bytes, not hex text
            if len(raw) < MIN_SECRET_BYTES:
                fail(f"secret file {secret_file}: at least {MIN_SECRET_BYTES} bytes needed")
            return raw
        return parse_secret(text, f"secret file {secret_file}")
    if secret_hex is not None:
        return parse_secret(secret_hex, "--secret")
    fail("no epoch secret: give --secret-file FILE or --secret HEX (or set SPMA_POL_SECRET)")


def parse_liabilities(data: object, source: str) -> Mapping[str, float]:
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
        liabilities: Path | None = typer.Option(
            None, "--liabilities", help='JSON file {"account": equity_usd, ...} (offline)'
        ),
        epoch: int | None = typer.Option(
            None, "--epoch", min=0, help="proof epoch (offline: required; stream: latest)"
        ),
        from_stream: bool = typer.Option(
            False, "--from-stream", help="use the roots and leaves the workers published"
        ),
        publish: bool = typer.Option(
            False, "--publish", help="with --from-stream: publish the combined root too"
        ),
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
        if from_stream:
            prove_from_stream(account, key, epoch, out, publish)
            return
        if liabilities is None or epoch is None:
            fail("give --liabilities FILE and --epoch N, or --from-stream")
        book = parse_liabilities(read_json(liabilities, "liabilities"), str(liabilities))
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


def prove_from_stream(
    account: str, secret: bytes, epoch: int | None, out: Path | None, publish: bool = False
) -> None:
    """The account's proof against the combined root, from the topic and the table changelog.

    With ``publish``, the combined root (partition null) goes on solvency-proofs, keyed by the
    epoch: the same epoch always gives the same record, so publishing twice is harmless.
    """
    from datetime import UTC, datetime

    from streams.accounts.proofs import combined_proof, leaves_from_changelog
    from streams.codec import codec_from_settings
    from streams.kafka_io import drain, flush, make_producer, produce
    from streams.records import SolvencyProof
    from streams.scaling.control import read_layouts

    settings = load_settings()
    layouts = read_layouts(settings)  # the generation in use: its changelog, its partitions
    active = settings.for_generation(layouts.active, layouts.active_partitions)
    codec = codec_from_settings(settings)
    raw = settings.model_copy(update={"topic_prefix": ""})
    changelog = active.portfolios_changelog()
    topic = settings.topic(Topic.SOLVENCY_PROOFS)
    got = drain(raw, [topic, changelog], timeout_s=60.0, quiet_s=3.0)
    roots = [
        r
        for m in got
        if m.topic == topic
        for r in [codec.decode(Topic.SOLVENCY_PROOFS, m.value)]
        if isinstance(r, SolvencyProof)
    ]
    leaves = leaves_from_changelog([(m.key, m.value) for m in got if m.topic == changelog])
    try:
        partitions = active.layout_partitions
        proof, top = combined_proof(account, roots, leaves, partitions, secret, epoch)
    except ValueError as exc:
        fail(str(exc))
    write_proof(proof, out)
    if publish:
        partition_roots = {
            r.partition: r for r in roots if r.epoch == proof.epoch and r.partition is not None
        }.values()  # a replayed root is the same record: one per partition
        combined = SolvencyProof(
            epoch=proof.epoch,
            root_hash=top.root_hash.hex(),
            total_liabilities_cents=top.total_cents,
            account_count=sum(r.account_count for r in partition_roots),
            partition=None,
            ts=max((r.ts for r in partition_roots), default=datetime.now(tz=UTC)),
        )
        producer = make_producer(settings)
        produce(producer, codec, settings, Topic.SOLVENCY_PROOFS, str(proof.epoch), combined)
        flush(producer)
    typer.echo(
        f"root {top.root_hash.hex()} total {top.total_cents} cents "
        f"({format_cents(top.total_cents)} USD) over {top.count} partitions, epoch {proof.epoch}",
        err=True,
    )
