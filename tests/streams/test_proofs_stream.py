"""Proof-of-liabilities publication by the partitions (streams/accounts/proofs.py), without Kafka.

Each partition closes an epoch when event time enters a later one: the published total is the
sum of its accounts' liabilities (max(0, E) in cents), every account's proof extends to the
combined root over the partitions, and a tampered proof fails with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from engine.solvency import ProofError, usd_to_liability_cents, verify_proof
from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.processor import AccountProcessor
from streams.accounts.proofs import (
    PROOF_EPOCHS_KEY,
    PROOF_KEY,
    ProofPublisher,
    combined_proof,
    leaves_from_changelog,
    save_leaves,
)
from streams.market.state import MarketState

SECRET = bytes.fromhex("00112233445566778899aabbccddeeff")
T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)  # an hour boundary: epoch = floor(ts / 3600)


def _partition(p: int, accounts: dict[str, float]) -> tuple[AccountProcessor, list[r.Record]]:
    """A partition with accounts holding USDC (a negative balance is a debt) and a BTC long."""
    proc = AccountProcessor(p, MarketState())
    proc.prover = ProofPublisher(SECRET)
    out: list[r.Record] = []
    inst = r.InstrumentRecord(name="BTC-PERPETUAL", kind="PERPETUAL", underlying="BTC", ts=T0)
    updates = [
        r.MarketUpdate(update_id="i", kind="INSTRUMENT", instrument=inst, seq=1, ts=T0),
        r.MarketUpdate(update_id="u", kind="MARK", underlying="USDC", mark=1.0, seq=2, ts=T0),
        r.MarketUpdate(update_id="b", kind="MARK", underlying="BTC", mark=1e5, seq=3, ts=T0),
    ]
    for n, u in enumerate(updates):
        proc.on_market(u, InputRef("mb", p, n))
    for n, (account, usdc) in enumerate(accounts.items()):
        proc.on_transfer(
            r.CollateralTransfer(
                transfer_id=f"t{n}",
                account=account,
                asset="USDC",
                amount=usdc,
                kind="DEPOSIT",
                ts=T0,
            ),
            InputRef("collateral", p, n),
        )
    # an isolated sub-account is a leaf of its own
    if accounts:
        proc.on_transfer(
            r.CollateralTransfer(
                transfer_id="iso",
                account=next(iter(accounts)),
                sub_account="iso",
                isolated=True,
                asset="USDC",
                amount=7.77,
                kind="DEPOSIT",
                ts=T0,
            ),
            InputRef("collateral", p, 99),
        )
    # still epoch 0: nothing; the first update of the next hour closes it
    assert not [
        o for o in proc.on_market(updates[2], InputRef("mb", p, 10)) if o.topic == "solvency-proofs"
    ]
    later = updates[2].model_copy(update={"ts": T0 + timedelta(hours=1, seconds=1), "seq": 4})
    out = [o.record for o in proc.on_market(later, InputRef("mb", p, 11))]
    return proc, [o for o in out if isinstance(o, r.SolvencyProof)]


def test_partitions_publish_roots_and_every_account_proves_against_the_combined_root() -> None:
    books = [
        {"alice": 1234.565, "bob": 10.0},
        {"carol": 5.0, "dave": -50.0},  # dave owes: liability 0
        {},
    ]
    roots: list[r.SolvencyProof] = []
    changelog: list[tuple[bytes, bytes]] = []
    for p, book in enumerate(books):
        proc, published = _partition(p, book)
        assert len(published) == 1
        root = published[0]
        epoch = int(T0.timestamp() // 3600)
        assert (root.epoch, root.partition) == (epoch, p)
        expected = {a: usd_to_liability_cents(max(e, 0.0)) for a, e in book.items()}
        if book:
            expected[f"{next(iter(book))}/iso"] = 777
        assert root.total_liabilities_cents == sum(expected.values())
        assert root.account_count == len(expected)
        leaves = proc.prover.take()  # type: ignore[union-attr]
        assert leaves is not None and leaves["liabilities"] == expected
        roots.append(root)
        key = PROOF_KEY.format(partition=p, epoch=epoch)
        changelog.append((orjson.dumps(key), orjson.dumps(leaves)))
    found = leaves_from_changelog(changelog)
    total = sum(x.total_liabilities_cents for x in roots)
    for account in ("alice", "bob", "carol", "dave", "alice/iso"):
        proof, top = combined_proof(account, roots, found, len(books), SECRET)
        assert top.total_cents == total
        verify_proof(proof, top.root_hash.hex(), total)
    proof, top = combined_proof("alice", roots, found, len(books), SECRET)
    tampered = proof.__class__(**{**proof.__dict__, "liability_cents": proof.liability_cents + 1})
    with pytest.raises(ProofError) as err:
        verify_proof(tampered, top.root_hash.hex(), total)
    assert err.value.reason
    # a wrong secret or a missing partition root is refused with the reason
    with pytest.raises(ValueError, match="differs from the published"):
        combined_proof("alice", roots, found, len(books), b"another secret, 16+ bytes")
    with pytest.raises(ValueError, match="no published root"):
        combined_proof("alice", roots[:2], found, len(books), SECRET)


def test_the_secret_setting_is_checked_and_optional() -> None:
    from pydantic import ValidationError

    from infra.settings import Settings
    from streams.accounts.proofs import publisher

    assert publisher(Settings(pol_secret=None)) is None
    made = publisher(Settings(pol_secret=SECRET.hex()))
    assert made is not None and made.secret == SECRET
    for bad in ("not hex", "00ff"):
        with pytest.raises(ValidationError):
            Settings(pol_secret=bad)


class _Table(dict[str, bytes]):
    """A table that records its writes and deletes in order, like a changelog."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[bytes, bytes | None]] = []

    def __setitem__(self, key: str, value: bytes) -> None:
        super().__setitem__(key, value)
        self.log.append((orjson.dumps(key), value))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.log.append((orjson.dumps(key), None))


def _publish_epochs(proc: AccountProcessor, table: _Table, epochs: range) -> None:
    """Close an epoch per hour of event time and save its leaves as the worker does."""
    for n in epochs:
        proc.prover.publish(proc, n, T0)  # type: ignore[union-attr]
        save_leaves(table, proc)


def test_each_epoch_kept_has_its_own_leaves_and_older_ones_are_deleted() -> None:
    proc, _ = _partition(0, {"alice": 100.0, "bob": 50.0})
    proc.prover = ProofPublisher(SECRET, kept=3)
    table = _Table()
    _publish_epochs(proc, table, range(10, 16))
    kept = {k for k in table if k.startswith("\x00proof/")}
    assert kept == {PROOF_KEY.format(partition=0, epoch=e) for e in (13, 14, 15)}
    assert orjson.loads(table[PROOF_EPOCHS_KEY.format(partition=0)]) == [13, 14, 15]
    found = leaves_from_changelog(table.log)  # the tombstones remove the deleted epochs
    assert sorted(found) == [(0, 13), (0, 14), (0, 15)]


def test_a_proof_for_any_kept_epoch_and_a_clear_error_for_others() -> None:
    proc, _ = _partition(0, {"alice": 100.0, "bob": 50.0})
    proc.prover = ProofPublisher(SECRET, kept=3)
    table = _Table()
    roots: list[r.SolvencyProof] = []
    for n in range(10, 16):
        out = proc.prover.publish(proc, n, T0)
        roots += [o.record for o in out if isinstance(o.record, r.SolvencyProof)]
        save_leaves(table, proc)
    found = leaves_from_changelog(table.log)
    for epoch in (13, 14, 15):
        proof, top = combined_proof("alice", roots, found, 1, SECRET, epoch)
        assert proof.epoch == epoch
        verify_proof(proof, top.root_hash.hex(), top.total_cents)
    assert combined_proof("alice", roots, found, 1, SECRET)[0].epoch == 15
    with pytest.raises(ValueError, match="epoch 11 is older than the epochs kept"):
        combined_proof("alice", roots, found, 1, SECRET, 11)
    with pytest.raises(ValueError, match="no leaves for it in epoch 99"):
        combined_proof("alice", roots, found, 1, SECRET, 99)


def test_leaves_written_before_epochs_were_kept_still_prove() -> None:
    """A table from before (one key per partition, the newest epoch) still reads."""
    proc, published = _partition(0, {"alice": 100.0})
    leaves = proc.prover.take()  # type: ignore[union-attr]
    legacy = [(orjson.dumps("\x00proof/0"), orjson.dumps(leaves))]
    found = leaves_from_changelog(legacy)
    proof, _ = combined_proof("alice", published, found, 1, SECRET)  # type: ignore[arg-type]
    assert proof.epoch == published[0].epoch  # type: ignore[attr-defined]
