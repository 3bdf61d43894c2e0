"""Proof of liabilities (section 13): Merkle-sum tree, inclusion proofs, tampering, partitions."""

from __future__ import annotations

import copy
import hashlib
import hmac
import math
import random
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.solvency import (
    EMPTY_HASH,
    InclusionProof,
    LeafInput,
    MerkleSumTree,
    PartitionedTree,
    ProofError,
    ProofFailure,
    ProofStep,
    UnknownAccountError,
    combine_roots,
    derive_salt,
    extend_proof,
    format_cents,
    leaves_from_liabilities,
    prove_from_liabilities,
    usd_to_liability_cents,
    verify_proof,
)

SECRET = bytes.fromhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
EPOCH = 42


# ---------------------------------------------------------------------------------------------
# An independent re-implementation of the documented byte layout (hashlib/hmac only)
# ---------------------------------------------------------------------------------------------


def ref_salt(secret: bytes, account: str, epoch: int) -> bytes:
    """HMAC-SHA256(secret, utf8(account) || u64be(epoch))."""
    return hmac.new(secret, account.encode("utf-8") + epoch.to_bytes(8, "big"), "sha256").digest()


def ref_leaf(epoch: int, salt: bytes, account: str, cents: int) -> bytes:
    """SHA-256("leaf" || u64 epoch || salt || u16 len || account || u128 liability)."""
    raw = account.encode("utf-8")
    data = b"leaf" + epoch.to_bytes(8, "big") + salt + len(raw).to_bytes(2, "big") + raw
    return hashlib.sha256(data + cents.to_bytes(16, "big")).digest()


def ref_node(lh: bytes, ls: int, rh: bytes, rs: int) -> bytes:
    """SHA-256("node" || left hash || u128 left sum || right hash || u128 right sum)."""
    return hashlib.sha256(
        b"node" + lh + ls.to_bytes(16, "big") + rh + rs.to_bytes(16, "big")
    ).digest()


def ref_root(nodes: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    """Pair up levels, padding odd ones with (32 zero bytes, 0)."""
    if not nodes:
        return bytes(32), 0
    while len(nodes) > 1:
        if len(nodes) % 2:
            nodes = [*nodes, (bytes(32), 0)]
        nodes = [
            (ref_node(*nodes[i], *nodes[i + 1]), nodes[i][1] + nodes[i + 1][1])
            for i in range(0, len(nodes), 2)
        ]
    return nodes[0]


def ref_tree_root(book: dict[str, int], secret: bytes, epoch: int) -> tuple[bytes, int]:
    """The root of a book built from scratch: leaves sorted by leaf hash."""
    leaves = sorted((ref_leaf(epoch, ref_salt(secret, a, epoch), a, c), c) for a, c in book.items())
    return ref_root(leaves)


def ref_verify(proof: dict[str, Any], root_hex: str) -> bool:
    """A third party's verifier written from the module docstring only."""
    h = ref_leaf(
        proof["epoch"], bytes.fromhex(proof["salt"]), proof["account"], proof["liability_cents"]
    )
    s = proof["liability_cents"]
    for step in proof["path"]:
        sib, ss = bytes.fromhex(step["sibling_hash"]), step["sibling_sum_cents"]
        if ss < 0:
            return False
        h = ref_node(sib, ss, h, s) if step["side"] == "L" else ref_node(h, s, sib, ss)
        s += ss
    return h.hex() == root_hex and s == proof["total_cents"]


def cents_of(usd: float) -> int:
    """Liability in cents computed independently: max(0, round half up)."""
    return max(0, int((Decimal(repr(usd)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


# ---------------------------------------------------------------------------------------------
# The 10,000-account book
# ---------------------------------------------------------------------------------------------


def random_equities(n: int, seed: int) -> dict[str, float]:
    """Equities in USD: a fifth zero, a fifth negative (clipped), the rest log-spread positive."""
    rng = random.Random(seed)
    book: dict[str, float] = {}
    for i in range(n):
        kind = i % 5
        if kind == 0:
            usd = 0.0
        elif kind == 1:
            usd = -round(rng.uniform(0.0, 1e6), rng.choice([0, 2, 3]))
        else:
            usd = round(10 ** rng.uniform(-2, 9), rng.choice([0, 2, 3, 6]))
        book[f"acct-{rng.getrandbits(48):012x}-{i}"] = usd
    return book


@pytest.fixture(scope="module")
def book() -> dict[str, float]:
    """10,000 accounts with random equities."""
    return random_equities(10_000, seed=13)


@pytest.fixture(scope="module")
def tree(book: dict[str, float]) -> MerkleSumTree:
    """The epoch's tree over the 10,000-account book."""
    return MerkleSumTree.build(leaves_from_liabilities(book), SECRET, EPOCH)


@pytest.fixture(scope="module")
def sample_proof(tree: MerkleSumTree, book: dict[str, float]) -> InclusionProof:
    """A proof of a non-zero account, for tampering."""
    account = next(a for a, usd in book.items() if usd > 1000)
    return tree.proof(account)


def test_every_account_of_a_10000_account_book_verifies(
    tree: MerkleSumTree, book: dict[str, float]
) -> None:
    root = tree.root_hash.hex()
    assert tree.count == 10_000
    for account, usd in book.items():
        proof = tree.proof(account)
        assert proof.liability_cents == cents_of(usd)
        assert proof.salt == ref_salt(SECRET, account, EPOCH).hex()
        verify_proof(proof, root, tree.total_cents)
    # And a third-party verifier agrees on a sample, through the JSON form.
    for account in list(book)[::97]:
        data = InclusionProof.from_json(tree.proof(account).to_json()).to_dict()
        assert ref_verify(data, root)


def test_published_total_equals_the_sum_of_liabilities(
    tree: MerkleSumTree, book: dict[str, float]
) -> None:
    expected = sum(cents_of(usd) for usd in book.values())
    assert tree.total_cents == expected
    half_up = (max(0, math.floor(Fraction(repr(u)) * 100 + Fraction(1, 2))) for u in book.values())
    assert tree.total_cents == sum(half_up)
    assert sum(1 for u in book.values() if cents_of(u) == 0) >= 4_000  # zeros and clipped


def test_the_tree_matches_an_independent_reimplementation(
    tree: MerkleSumTree, book: dict[str, float]
) -> None:
    cents = {a: cents_of(u) for a, u in book.items()}
    assert ref_tree_root(cents, SECRET, EPOCH) == tree.root


def test_leaves_are_ordered_by_leaf_hash(tree: MerkleSumTree) -> None:
    leaves = [tree.hash_levels[0][i * 32 : (i + 1) * 32] for i in range(tree.count)]
    assert leaves == sorted(leaves)


# ---------------------------------------------------------------------------------------------
# Tampering
# ---------------------------------------------------------------------------------------------


def reason_of(proof: InclusionProof, root: str, total: int | None = None) -> ProofFailure:
    """The failure reason (the test fails if the proof verifies)."""
    with pytest.raises(ProofError) as info:
        verify_proof(proof, root, total)
    assert str(info.value)  # a message, not just a code
    return info.value.reason


def flip_hex(text: str, at: int = 0) -> str:
    """The same hex string with one digit changed."""
    digit = "0" if text[at] != "0" else "1"
    return text[:at] + digit + text[at + 1 :]


def test_tampering_with_a_proof_field_is_detected(sample_proof: InclusionProof) -> None:
    p, root, total = sample_proof, sample_proof.root_hash, sample_proof.total_cents
    verify_proof(p, root, total)
    failing = {
        "liability +1": (replace(p, liability_cents=p.liability_cents + 1), "root_mismatch"),
        "liability -1": (replace(p, liability_cents=p.liability_cents - 1), "root_mismatch"),
        "liability negative": (replace(p, liability_cents=-5), "negative_sum"),
        "salt": (replace(p, salt=flip_hex(p.salt, 7)), "root_mismatch"),
        "account": (replace(p, account=p.account + "x"), "root_mismatch"),
        "epoch": (replace(p, epoch=p.epoch + 1), "root_mismatch"),
        "proof root field": (replace(p, root_hash=flip_hex(p.root_hash)), "root_mismatch"),
        "proof total field": (replace(p, total_cents=p.total_cents + 1), "total_mismatch"),
        "version": (replace(p, version=2), "unsupported_version"),
        "salt not hex": (replace(p, salt="zz" * 32), "malformed"),
        "leaf index out of range": (
            replace(p, leaf_index=p.leaf_index + (1 << len(p.path))),
            "malformed",
        ),
        "path truncated": (replace(p, path=p.path[:-1]), None),
        "empty account": (replace(p, account=""), "malformed"),
    }
    for name, (bad, expected) in failing.items():
        got = reason_of(bad, root, total)
        assert expected is None or got == expected, name
    assert reason_of(p, flip_hex(root, 63), total) == ProofFailure.ROOT_MISMATCH
    assert reason_of(p, root, total + 1) == ProofFailure.TOTAL_MISMATCH
    assert reason_of(p, root, total - 1) == ProofFailure.TOTAL_MISMATCH


def test_tampering_with_any_step_is_detected(sample_proof: InclusionProof) -> None:
    p, root = sample_proof, sample_proof.root_hash
    assert len(p.path) == 14  # ceil(log2(10,000))
    for i, step in enumerate(p.path):

        def with_step(new: ProofStep, i: int = i) -> InclusionProof:
            return replace(p, path=[*p.path[:i], new, *p.path[i + 1 :]])

        bad_hash = replace(step, sibling_hash=flip_hex(step.sibling_hash, 31))
        assert reason_of(with_step(bad_hash), root) == ProofFailure.ROOT_MISMATCH
        for delta in (1, -1, 10**6):
            if step.sibling_sum_cents + delta >= 0:
                bad_sum = replace(step, sibling_sum_cents=step.sibling_sum_cents + delta)
                assert reason_of(with_step(bad_sum), root) == ProofFailure.ROOT_MISMATCH
        negative = replace(step, sibling_sum_cents=-1)
        assert reason_of(with_step(negative), root) == ProofFailure.NEGATIVE_SUM
        huge = replace(step, sibling_sum_cents=2**128)
        assert reason_of(with_step(huge), root) == ProofFailure.SUM_OVERFLOW
        flipped = replace(step, side="L" if step.side == "R" else "R")
        assert reason_of(with_step(flipped), root) == ProofFailure.WRONG_SIDE
        # Flip the side *and* the matching index bit: the order is now wrong for the hash.
        rebit = replace(with_step(flipped), leaf_index=p.leaf_index ^ (1 << i))
        assert reason_of(rebit, root) == ProofFailure.ROOT_MISMATCH
        assert reason_of(with_step(replace(step, side="X")), root) == ProofFailure.MALFORMED
        if i + 1 < len(p.path):
            swapped = list(p.path)
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            expected = (
                ProofFailure.WRONG_SIDE
                if step.side != p.path[i + 1].side
                else ProofFailure.ROOT_MISMATCH
            )
            assert reason_of(replace(p, path=swapped), root) == expected
    for bit in range(len(p.path)):
        moved = replace(p, leaf_index=p.leaf_index ^ (1 << bit))
        assert reason_of(moved, root) == ProofFailure.WRONG_SIDE


def mutations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """One changed value for every scalar in a JSON document, with its location."""
    out: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            out += mutations(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += mutations(item, (*path, i))
    elif isinstance(value, str):
        if value in ("L", "R"):
            out.append((path, "R" if value == "L" else "L"))
        elif all(c in "0123456789abcdef" for c in value):
            out.append((path, flip_hex(value, len(value) // 2)))
        else:
            out.append((path, value[:-1] + chr(ord(value[-1]) ^ 1)))
    else:
        out.append((path, value + 1))
    return out


def test_tampering_with_any_json_field_is_detected(sample_proof: InclusionProof) -> None:
    document = sample_proof.to_dict()
    root = sample_proof.root_hash
    changes = mutations(document)
    assert len(changes) == 8 + 3 * len(sample_proof.path)
    for where, value in changes:
        bad = copy.deepcopy(document)
        target = bad
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value
        with pytest.raises(ProofError):
            verify_proof(InclusionProof.from_dict(bad), root)


def test_malformed_json_is_rejected_with_a_reason(sample_proof: InclusionProof) -> None:
    good = sample_proof.to_dict()
    cases: list[Any] = [
        [],
        {k: v for k, v in good.items() if k != "salt"},
        {**good, "extra": 1},
        {**good, "liability_cents": 1.5},
        {**good, "liability_cents": True},
        {**good, "account": 7},
        {**good, "path": "nope"},
        {**good, "path": [{"sibling_hash": "00" * 32, "side": "L"}]},
    ]
    for data in cases:
        with pytest.raises(ProofError) as info:
            InclusionProof.from_dict(data)
        assert info.value.reason == ProofFailure.MALFORMED
    with pytest.raises(ProofError) as info:
        InclusionProof.from_dict({**good, "version": 9})
    assert info.value.reason == ProofFailure.UNSUPPORTED_VERSION
    with pytest.raises(ProofError) as info:
        InclusionProof.from_json(b"{not json")
    assert info.value.reason == ProofFailure.MALFORMED
    with pytest.raises(ProofError) as info:
        verify_proof(sample_proof, "xyz")
    assert info.value.reason == ProofFailure.MALFORMED


def test_json_round_trip(sample_proof: InclusionProof) -> None:
    text = sample_proof.to_json()
    assert InclusionProof.from_json(text) == sample_proof
    assert InclusionProof.from_json(text.decode()).to_dict()["version"] == 1


# ---------------------------------------------------------------------------------------------
# Small books, known values, edge cases
# ---------------------------------------------------------------------------------------------


def test_two_leaf_tree_matches_a_root_computed_by_hand() -> None:
    secret = b"epoch-secret-for-the-known-value"
    leaves = [LeafInput("alice", 12_345), LeafInput("bob", 0)]
    tree = MerkleSumTree.build(leaves, secret, 7)
    salt_a = hmac.new(secret, b"alice" + bytes(7) + b"\x07", hashlib.sha256).digest()
    salt_b = hmac.new(secret, b"bob" + bytes(7) + b"\x07", hashlib.sha256).digest()
    leaf_a = hashlib.sha256(
        b"leaf" + b"\x00" * 7 + b"\x07" + salt_a + b"\x00\x05" + b"alice" + (12_345).to_bytes(16)
    ).digest()
    leaf_b = hashlib.sha256(
        b"leaf" + b"\x00" * 7 + b"\x07" + salt_b + b"\x00\x03" + b"bob" + bytes(16)
    ).digest()
    (lh, ls), (rh, rs) = sorted([(leaf_a, 12_345), (leaf_b, 0)])
    root = hashlib.sha256(
        b"node" + lh + ls.to_bytes(16, "big") + rh + rs.to_bytes(16, "big")
    ).digest()
    assert tree.root == (root, 12_345)
    proof = tree.proof("alice")
    assert proof.salt == salt_a.hex()
    assert proof.path == [
        ProofStep(leaf_b.hex(), 0, "R" if leaf_a < leaf_b else "L"),
    ]
    verify_proof(proof, root.hex(), 12_345)


def test_odd_levels_are_padded_with_an_empty_node() -> None:
    leaves = [LeafInput(a, c) for a, c in (("a", 1), ("b", 2), ("c", 3))]
    tree = MerkleSumTree.build(leaves, SECRET, 1)
    assert tree.root == ref_tree_root({"a": 1, "b": 2, "c": 3}, SECRET, 1)
    last = tree.proof(tree.accounts[int(tree.positions.argmax())])
    assert last.leaf_index == 2
    assert (last.path[0].sibling_hash, last.path[0].sibling_sum_cents) == (EMPTY_HASH.hex(), 0)
    for account in "abc":
        verify_proof(tree.proof(account), tree.root_hash.hex(), 6)


def test_single_and_empty_trees() -> None:
    one = MerkleSumTree.build([LeafInput("solo", 99)], SECRET, 3)
    proof = one.proof("solo")
    assert proof.path == [] and proof.leaf_index == 0
    assert one.root_hash == ref_leaf(3, ref_salt(SECRET, "solo", 3), "solo", 99)
    verify_proof(proof, one.root_hash.hex(), 99)
    empty = MerkleSumTree.build([], SECRET, 3)
    assert (empty.root, empty.count) == ((EMPTY_HASH, 0), 0)
    with pytest.raises(UnknownAccountError):
        empty.proof("solo")


def test_same_inputs_give_the_same_root_whatever_the_order() -> None:
    equities = random_equities(500, seed=5)
    leaves = leaves_from_liabilities(equities)
    first = MerkleSumTree.build(leaves, SECRET, EPOCH)
    again = MerkleSumTree.build(list(reversed(leaves)), SECRET, EPOCH)
    assert first.root == again.root
    other_epoch = MerkleSumTree.build(leaves, SECRET, EPOCH + 1)
    other_secret = MerkleSumTree.build(leaves, b"another secret!!", EPOCH)
    assert other_epoch.root_hash != first.root_hash != other_secret.root_hash
    assert other_epoch.total_cents == first.total_cents == other_secret.total_cents


def test_salts_are_hmac_of_account_and_epoch() -> None:
    assert derive_salt(SECRET, "acct-1", 9) == ref_salt(SECRET, "acct-1", 9)
    long_key = bytes(range(100))  # longer than the SHA-256 block: hashed first
    tree = MerkleSumTree.build([LeafInput("acct-1", 5)], long_key, 9)
    assert tree.proof("acct-1").salt == ref_salt(long_key, "acct-1", 9).hex()


def test_usd_to_liability_cents_rounds_half_up_and_clips() -> None:
    assert usd_to_liability_cents(1.005) == 101
    assert usd_to_liability_cents(0.005) == 1
    assert usd_to_liability_cents(0.004) == 0
    assert usd_to_liability_cents(2.675) == 268
    assert usd_to_liability_cents(-5.0) == 0
    assert usd_to_liability_cents(-0.004) == 0
    assert usd_to_liability_cents(12) == 1200
    assert usd_to_liability_cents(1e15) == 10**17
    for bad in (float("nan"), float("inf"), True, "1.0"):
        with pytest.raises(ValueError):
            usd_to_liability_cents(bad)  # type: ignore[arg-type]
    assert format_cents(123_456) == "1234.56" and format_cents(5) == "0.05"


def test_bad_leaves_are_refused() -> None:
    with pytest.raises(ValueError, match="more than once"):
        MerkleSumTree.build([LeafInput("a", 1), LeafInput("a", 2)], SECRET, 1)
    for amount in (-1, 1.5, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            MerkleSumTree.build([LeafInput("a", amount)], SECRET, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UTF-8 bytes"):
        MerkleSumTree.build([LeafInput("", 1)], SECRET, 1)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        MerkleSumTree.build([LeafInput("a", 2**62), LeafInput("b", 2**62)], SECRET, 1)
    with pytest.raises(ValueError, match="u64"):
        MerkleSumTree.build([LeafInput("a", 1)], SECRET, -1)
    with pytest.raises(ValueError, match="secret"):
        MerkleSumTree.build([LeafInput("a", 1)], b"", 1)
    with pytest.raises(ValueError, match="'x'"):
        leaves_from_liabilities({"x": float("nan")})


def test_prove_from_liabilities() -> None:
    proof, root, total = prove_from_liabilities({"a": 10.0, "b": -3.0, "c": 0.125}, "c", 5, SECRET)
    assert (proof.liability_cents, total) == (13, 1013)
    verify_proof(proof, root, total)
    with pytest.raises(UnknownAccountError):
        prove_from_liabilities({"a": 1.0}, "zz", 5, SECRET)


@settings(max_examples=60, deadline=None)
@given(
    equities=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.floats(min_value=-1e9, max_value=1e12, allow_nan=False),
        max_size=40,
    ),
    epoch=st.integers(0, 2**64 - 1),
    data=st.data(),
)
def test_small_random_books(equities: dict[str, float], epoch: int, data: st.DataObject) -> None:
    tree = MerkleSumTree.build(leaves_from_liabilities(equities), SECRET, epoch)
    cents = {a: cents_of(u) for a, u in equities.items()}
    assert tree.total_cents == sum(cents.values())
    assert tree.root == ref_tree_root(cents, SECRET, epoch)
    root = tree.root_hash.hex()
    for account in equities:
        proof = tree.proof(account)
        verify_proof(proof, root, tree.total_cents)
        assert ref_verify(proof.to_dict(), root)
    if equities:
        proof = tree.proof(data.draw(st.sampled_from(sorted(equities))))
        where, value = data.draw(st.sampled_from(mutations(proof.to_dict())))
        bad = copy.deepcopy(proof.to_dict())
        target = bad
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value
        with pytest.raises(ProofError):
            verify_proof(InclusionProof.from_dict(bad), root, tree.total_cents)


# ---------------------------------------------------------------------------------------------
# Partitions and the combined root
# ---------------------------------------------------------------------------------------------


def test_partition_proofs_extend_to_the_combined_root() -> None:
    equities = random_equities(3_000, seed=21)
    leaves = leaves_from_liabilities(equities)
    partitions = [leaves[0:1000], leaves[1000:1700], leaves[1700:2900], leaves[2900:]]
    combined = PartitionedTree.build(partitions, SECRET, EPOCH)
    trees = [MerkleSumTree.build(p, SECRET, EPOCH) for p in partitions]
    assert [t.root for t in trees] == [t.root for t in combined.partitions]
    assert combine_roots([t.root for t in trees]) == combined.top.root
    assert combined.top.root == ref_root([t.root for t in trees])
    assert combined.total_cents == sum(cents_of(u) for u in equities.values())
    assert combined.count == 3_000
    root = combined.root_hash.hex()
    for p, leaves_p in enumerate(partitions):
        for leaf in leaves_p[::7]:
            own = trees[p].proof(leaf.account)
            verify_proof(own, trees[p].root_hash.hex(), trees[p].total_cents)
            extended = extend_proof(own, combined.top, p)
            assert extended == combined.proof(leaf.account)
            verify_proof(extended, root, combined.total_cents)
            assert ref_verify(extended.to_dict(), root)
            with pytest.raises(ProofError):
                verify_proof(own, root)
    with pytest.raises(ValueError, match="not partition"):
        extend_proof(trees[0].proof(partitions[0][0].account), combined.top, 1)
    published = combined.published_roots()
    assert [r.partition for r in published] == [0, 1, 2, 3, None]
    assert published[-1].root_hash == root
    assert published[-1].total_liabilities_cents == combined.total_cents
    assert [r.account_count for r in published] == [1000, 700, 1200, 100, 3000]
    with pytest.raises(ValueError, match="partitions 0 and 1"):
        PartitionedTree.build([leaves[:2], leaves[1:3]], SECRET, EPOCH)
    with pytest.raises(UnknownAccountError):
        combined.proof("nobody")


def test_combine_roots_edge_cases() -> None:
    node = (hashlib.sha256(b"x").digest(), 5)
    assert combine_roots([]) == (EMPTY_HASH, 0)
    assert combine_roots([node]) == node
    assert combine_roots([node, node, node]) == ref_root([node, node, node])
    with pytest.raises(ValueError):
        combine_roots([(b"short", 1)])
    with pytest.raises(ValueError):
        combine_roots([(node[0], -1)])
