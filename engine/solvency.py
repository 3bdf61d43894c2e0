"""Proof of liabilities (margin-model.md section 13): a Merkle-sum tree over account liabilities.

Pure computation, no I/O. An account's liability is the equity the venue owes it, never below
zero: ``liability = max(0, equity)``, in integer USD cents (``usd_to_liability_cents`` rounds half
up, then clips at zero). Every sum in the tree is a non-negative integer; a published total must
fit an Avro long, so totals are bounded by ``MAX_TOTAL_CENTS = 2**63 - 1`` at build time, while the
wire format carries sums as 16-byte unsigned integers (the verifier accepts anything below 2**128).

Byte layout (all integers unsigned big-endian; ``||`` is concatenation; H is SHA-256):

* ``u16(x)``, ``u64(x)``, ``u128(x)``: x as 2, 8 and 16 bytes.
* salt (32 bytes, operator side only): ``HMAC-SHA256(key=epoch_secret,
  msg=utf8(account) || u64(epoch))``. The operator regenerates it from the secret; the account
  receives it in its proof. Ordering by salted leaf hash hides who sits next to whom.
* leaf: hash ``H(b"leaf" || u64(epoch) || salt || u16(len(utf8(account))) || utf8(account) ||
  u128(liability))`` and sum ``liability``. The leaf hash commits to the epoch, the account and
  the liability, so none of them can change without changing the root.
* node: hash ``H(b"node" || left_hash || u128(left_sum) || right_hash || u128(right_sum))`` and
  sum ``left_sum + right_sum`` (the classic flaw of hashing only the total is avoided: both child
  sums are committed).
* padding: a level with an odd number of nodes gets one empty node appended on the right:
  hash = 32 zero bytes, sum = 0. A tree with one leaf has that leaf as its root; an empty tree has
  the empty node as its root.
* leaf order: ascending leaf hash (bytewise); leaf i's position at level k is ``i >> k`` and the
  sibling sits on the left ("L") iff bit k of the leaf index is 1.
* per-partition trees are combined by a top tree whose leaves are the partition roots themselves
  (hash, sum) in partition order, hashed with the node rule above; an account's combined proof is
  its partition path followed by the top path, with leaf index
  ``partition_index << len(partition_path) | leaf_index``.

Proof JSON (version 1): ``{"version": 1, "epoch": int, "account": str, "salt": hex32,
"liability_cents": int, "leaf_index": int, "path": [{"sibling_hash": hex32, "sibling_sum_cents":
int, "side": "L" | "R"}, ...] (leaf level first), "root_hash": hex32, "total_cents": int}``; hex
is lower case.

Verification (``verify_proof``): start from the leaf, apply each step (sibling on the side given,
which must agree with the leaf index bits), check every sum is in [0, 2**128) and compare the
result with the published root hash and total.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from engine.errors import EngineError

PROOF_VERSION = 1
HASH_BYTES = 32
SUM_BYTES = 16
SALT_BYTES = 32
MAX_SUM = 2 ** (8 * SUM_BYTES) - 1
MAX_TOTAL_CENTS = 2**63 - 1
MAX_EPOCH = 2**64 - 1
MAX_ACCOUNT_BYTES = 2**16 - 1
EMPTY_HASH = bytes(HASH_BYTES)
LEAF_TAG = b"leaf"
NODE_TAG = b"node"

SumArray = npt.NDArray[np.uint64]


# --------------------------------------------------------------------------------------------
# Amounts
# --------------------------------------------------------------------------------------------


def usd_to_liability_cents(usd: float) -> int:
    """A liability in cents from an equity in USD: round half up to the cent, then max(0, .)."""
    if isinstance(usd, bool) or not isinstance(usd, int | float) or not math.isfinite(usd):
        raise ValueError(f"liability must be a finite number of USD, got {usd!r}")
    try:
        cents = int((Decimal(repr(usd)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:  # pragma: no cover - finite floats always convert
        raise ValueError(f"liability {usd!r} is not a number") from exc
    return max(0, cents)


def format_cents(cents: int) -> str:
    """Cents as a USD amount with two decimals, exactly (``123456`` -> ``"1234.56"``)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


# --------------------------------------------------------------------------------------------
# Hashing primitives (the documented byte layout)
# --------------------------------------------------------------------------------------------


def derive_salt(secret: bytes, account: str, epoch: int) -> bytes:
    """The account's salt for an epoch: HMAC-SHA256(secret, utf8(account) || u64(epoch))."""
    return hmac.digest(secret, account.encode() + epoch.to_bytes(8, "big"), "sha256")


def leaf_hash(epoch: int, salt: bytes, account: str, liability_cents: int) -> bytes:
    """The leaf hash: H("leaf" || u64 epoch || salt || u16 len || account || u128 liability)."""
    raw = account.encode()
    return hashlib.sha256(
        b"".join(
            (
                LEAF_TAG,
                epoch.to_bytes(8, "big"),
                salt,
                len(raw).to_bytes(2, "big"),
                raw,
                liability_cents.to_bytes(SUM_BYTES, "big"),
            )
        )
    ).digest()


def node_hash(left_hash: bytes, left_sum: int, right_hash: bytes, right_sum: int) -> bytes:
    """The inner-node hash: H("node" || left hash || u128 left sum || right hash || u128 right)."""
    return hashlib.sha256(
        b"".join(
            (
                NODE_TAG,
                left_hash,
                left_sum.to_bytes(SUM_BYTES, "big"),
                right_hash,
                right_sum.to_bytes(SUM_BYTES, "big"),
            )
        )
    ).digest()


class _Hmac:
    """HMAC-SHA256 under one key with precomputed pads (same output as ``hmac.digest``)."""

    def __init__(self, key: bytes) -> None:
        """Precompute the inner and outer hash states of the key."""
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        """HMAC of one message."""
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


# --------------------------------------------------------------------------------------------
# Proofs
# --------------------------------------------------------------------------------------------


class ProofFailure(StrEnum):
    """Why a proof does not verify."""

    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    NEGATIVE_SUM = "negative_sum"
    SUM_OVERFLOW = "sum_overflow"
    WRONG_SIDE = "wrong_side"
    ROOT_MISMATCH = "root_mismatch"
    TOTAL_MISMATCH = "total_mismatch"


class ProofError(EngineError, ValueError):
    """A proof that fails to parse or verify; ``reason`` says why, the message says where."""

    def __init__(self, reason: ProofFailure, message: str) -> None:
        """Keep the reason code next to the human-readable message."""
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.detail = message


class UnknownAccountError(EngineError, LookupError):
    """The account is not in the tree."""


@dataclass(frozen=True)
class LeafInput:
    """One account's liability for the tree, in integer cents (>= 0)."""

    account: str
    liability_cents: int


@dataclass(frozen=True)
class ProofStep:
    """One level of a path: the sibling's hash (hex) and sum, and the side it sits on."""

    sibling_hash: str
    sibling_sum_cents: int
    side: str  # "L": sibling is the left child; "R": sibling is the right child

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the step."""
        return {
            "sibling_hash": self.sibling_hash,
            "sibling_sum_cents": self.sibling_sum_cents,
            "side": self.side,
        }


@dataclass(frozen=True)
class InclusionProof:
    """An account's path from its leaf to the published root, with what it needs to recompute."""

    epoch: int
    account: str
    salt: str
    liability_cents: int
    leaf_index: int
    path: list[ProofStep]
    root_hash: str
    total_cents: int
    version: int = PROOF_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the proof."""
        return {
            "version": self.version,
            "epoch": self.epoch,
            "account": self.account,
            "salt": self.salt,
            "liability_cents": self.liability_cents,
            "leaf_index": self.leaf_index,
            "path": [step.to_dict() for step in self.path],
            "root_hash": self.root_hash,
            "total_cents": self.total_cents,
        }

    def to_json(self) -> bytes:
        """The proof as indented JSON bytes."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_dict(cls, data: Any) -> InclusionProof:
        """Parse the JSON form strictly; wrong shapes raise ProofError(MALFORMED)."""
        if not isinstance(data, dict):
            raise ProofError(ProofFailure.MALFORMED, "a proof must be a JSON object")
        expected = {
            "version",
            "epoch",
            "account",
            "salt",
            "liability_cents",
            "leaf_index",
            "path",
            "root_hash",
            "total_cents",
        }
        missing = sorted(expected - data.keys())
        extra = sorted(data.keys() - expected)
        if missing:
            raise ProofError(ProofFailure.MALFORMED, f"missing field(s): {', '.join(missing)}")
        if extra:
            raise ProofError(ProofFailure.MALFORMED, f"unknown field(s): {', '.join(extra)}")
        version = _int_field(data, "version")
        if version != PROOF_VERSION:
            raise ProofError(
                ProofFailure.UNSUPPORTED_VERSION,
                f"proof version {version} (this verifier reads version {PROOF_VERSION})",
            )
        path_data = data["path"]
        if not isinstance(path_data, list):
            raise ProofError(ProofFailure.MALFORMED, "path must be a list of steps")
        steps: list[ProofStep] = []
        step_keys = {"sibling_hash", "sibling_sum_cents", "side"}
        for i, raw in enumerate(path_data):
            if not isinstance(raw, dict) or raw.keys() != step_keys:
                raise ProofError(
                    ProofFailure.MALFORMED,
                    f"path[{i}] must be an object with exactly {', '.join(sorted(step_keys))}",
                )
            steps.append(
                ProofStep(
                    _str_field(raw, "sibling_hash", f"path[{i}]."),
                    _int_field(raw, "sibling_sum_cents", f"path[{i}]."),
                    _str_field(raw, "side", f"path[{i}]."),
                )
            )
        return cls(
            epoch=_int_field(data, "epoch"),
            account=_str_field(data, "account"),
            salt=_str_field(data, "salt"),
            liability_cents=_int_field(data, "liability_cents"),
            leaf_index=_int_field(data, "leaf_index"),
            path=steps,
            root_hash=_str_field(data, "root_hash"),
            total_cents=_int_field(data, "total_cents"),
            version=version,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> InclusionProof:
        """Parse a proof from JSON text; invalid JSON or shapes raise ProofError(MALFORMED)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProofError(ProofFailure.MALFORMED, f"not valid JSON ({exc})") from exc
        return cls.from_dict(data)


def _int_field(data: Mapping[str, Any], name: str, where: str = "") -> int:
    """An integer field (not a bool, not a float) or ProofError(MALFORMED)."""
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(ProofFailure.MALFORMED, f"{where}{name} must be an integer")
    return value


def _str_field(data: Mapping[str, Any], name: str, where: str = "") -> str:
    """A string field or ProofError(MALFORMED)."""
    value = data[name]
    if not isinstance(value, str):
        raise ProofError(ProofFailure.MALFORMED, f"{where}{name} must be a string")
    return value


def _hex_bytes(value: str, what: str, size: int) -> bytes:
    """Lower-case hex of exactly ``size`` bytes, or ProofError(MALFORMED)."""
    if len(value) != 2 * size or any(c not in "0123456789abcdef" for c in value):
        raise ProofError(ProofFailure.MALFORMED, f"{what} must be {2 * size} lower-case hex digits")
    return bytes.fromhex(value)


def _check_sum(value: int, what: str) -> None:
    """A committed sum must be in [0, 2**128)."""
    if value < 0:
        raise ProofError(ProofFailure.NEGATIVE_SUM, f"{what} is negative ({value})")
    if value > MAX_SUM:
        raise ProofError(ProofFailure.SUM_OVERFLOW, f"{what} does not fit 16 bytes ({value})")


def verify_proof(proof: InclusionProof, root_hash_hex: str, total_cents: int | None = None) -> None:
    """Check that the proof leads to the root (and total); raise ProofError with the reason."""
    if proof.version != PROOF_VERSION:
        raise ProofError(ProofFailure.UNSUPPORTED_VERSION, f"proof version {proof.version}")
    expected_root = _hex_bytes(root_hash_hex.lower(), "the published root hash", HASH_BYTES)
    if not 0 <= proof.epoch <= MAX_EPOCH:
        raise ProofError(ProofFailure.MALFORMED, f"epoch {proof.epoch} is not a u64")
    raw_account = proof.account.encode()
    if not raw_account or len(raw_account) > MAX_ACCOUNT_BYTES:
        raise ProofError(ProofFailure.MALFORMED, "account must be 1 to 65535 UTF-8 bytes")
    salt = _hex_bytes(proof.salt, "salt", SALT_BYTES)
    _hex_bytes(proof.root_hash, "root_hash", HASH_BYTES)
    _check_sum(proof.liability_cents, "liability_cents")
    if proof.leaf_index < 0 or proof.leaf_index >> len(proof.path):
        raise ProofError(
            ProofFailure.MALFORMED,
            f"leaf_index {proof.leaf_index} is out of range for a path of {len(proof.path)} steps",
        )
    current = leaf_hash(proof.epoch, salt, proof.account, proof.liability_cents)
    total = proof.liability_cents
    for level, step in enumerate(proof.path):
        sibling = _hex_bytes(step.sibling_hash, f"path[{level}].sibling_hash", HASH_BYTES)
        _check_sum(step.sibling_sum_cents, f"path[{level}].sibling_sum_cents")
        if step.side not in ("L", "R"):
            raise ProofError(ProofFailure.MALFORMED, f'path[{level}].side must be "L" or "R"')
        expected_side = "L" if (proof.leaf_index >> level) & 1 else "R"
        if step.side != expected_side:
            raise ProofError(
                ProofFailure.WRONG_SIDE,
                f"path[{level}] puts the sibling on the {step.side} but leaf index "
                f"{proof.leaf_index} puts it on the {expected_side}",
            )
        if step.side == "L":
            current = node_hash(sibling, step.sibling_sum_cents, current, total)
        else:
            current = node_hash(current, total, sibling, step.sibling_sum_cents)
        total += step.sibling_sum_cents
        _check_sum(total, f"the sum at level {level + 1}")
    if current != expected_root:
        raise ProofError(
            ProofFailure.ROOT_MISMATCH,
            f"the path leads to root {current.hex()}, not the published {expected_root.hex()}",
        )
    if proof.root_hash != expected_root.hex():
        raise ProofError(
            ProofFailure.ROOT_MISMATCH,
            f"the proof names root {proof.root_hash}, not the published {expected_root.hex()}",
        )
    if total != proof.total_cents:
        raise ProofError(
            ProofFailure.TOTAL_MISMATCH,
            f"the path sums to {total} cents but the proof states {proof.total_cents}",
        )
    if total_cents is not None and total != total_cents:
        raise ProofError(
            ProofFailure.TOTAL_MISMATCH,
            f"the path sums to {total} cents but the published total is {total_cents}",
        )


# --------------------------------------------------------------------------------------------
# The tree
# --------------------------------------------------------------------------------------------


def _check_leaves(accounts: list[str], cents: list[int], raws: list[bytes]) -> None:
    """Liabilities are non-negative int cents; account ids are 1 to 65535 UTF-8 bytes."""
    if not all(type(c) is int for c in cents) or (cents and min(cents) < 0):
        for account, amount in zip(accounts, cents, strict=True):
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                raise ValueError(
                    f"account {account!r}: liability must be a non-negative integer of cents, "
                    f"got {amount!r}"
                )
    if not all(0 < len(raw) <= MAX_ACCOUNT_BYTES for raw in raws):
        bad = next(a for a, r in zip(accounts, raws, strict=True) if not 0 < len(r) <= 65535)
        raise ValueError(f"account {bad!r}: id must be 1 to 65535 UTF-8 bytes")


def _next_level(hashes: bytes, sums: SumArray) -> tuple[bytes, SumArray]:
    """Hash a level (n > 1 nodes, concatenated hashes) into its parent level."""
    n = len(sums)
    if n % 2:
        hashes += EMPTY_HASH
        sums = np.append(sums, np.uint64(0))
        n += 1
    half = n // 2
    # One fixed-width 100-byte preimage per parent: tag, left hash, left u128, right hash, u128
    # (sums are < 2**63, so the high 8 bytes of every u128 are zero).
    record = np.zeros((half, 4 + 2 * (HASH_BYTES + SUM_BYTES)), dtype=np.uint8)
    record[:, 0:4] = np.frombuffer(NODE_TAG, dtype=np.uint8)
    pairs = np.frombuffer(hashes, dtype=np.uint8).reshape(half, 2, HASH_BYTES)
    be_sums = sums.astype(">u8").view(np.uint8).reshape(half, 2, 8)
    record[:, 4:36] = pairs[:, 0]
    record[:, 44:52] = be_sums[:, 0]
    record[:, 52:84] = pairs[:, 1]
    record[:, 92:100] = be_sums[:, 1]
    buffer = memoryview(record.tobytes())
    size = record.shape[1]
    sha = hashlib.sha256
    parents = b"".join([sha(buffer[i : i + size]).digest() for i in range(0, half * size, size)])
    return parents, sums[0::2] + sums[1::2]


@dataclass(eq=False)
class MerkleSumTree:
    """A Merkle-sum tree: levels of concatenated 32-byte hashes and uint64 sums, leaves first.

    ``accounts``, ``salts`` and ``index`` are in input order; ``positions[i]`` is input leaf i's
    position in the tree (ascending leaf hash). A top tree (``from_nodes``) has no accounts.
    """

    epoch: int
    hash_levels: list[bytes]
    sum_levels: list[SumArray]
    accounts: list[str] = field(default_factory=list)
    salts: list[bytes] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    positions: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __repr__(self) -> str:
        """A short summary (the levels are megabytes)."""
        return (
            f"MerkleSumTree(epoch={self.epoch}, count={self.count}, "
            f"root_hash={self.root_hash.hex()}, total_cents={self.total_cents})"
        )

    @classmethod
    def build(cls, leaves: Sequence[LeafInput], secret: bytes, epoch: int) -> MerkleSumTree:
        """The tree over every account's liability for an epoch, leaves ordered by leaf hash."""
        if not 0 <= epoch <= MAX_EPOCH:
            raise ValueError(f"epoch {epoch} is not a u64")
        if not secret:
            raise ValueError("the epoch secret must not be empty")
        accounts = [leaf.account for leaf in leaves]
        cents = [leaf.liability_cents for leaf in leaves]
        raws = [account.encode() for account in accounts]
        _check_leaves(accounts, cents, raws)
        total = sum(cents)
        if total > MAX_TOTAL_CENTS:
            raise ValueError(f"total liabilities {total} cents exceed 2**63 - 1")
        index = {account: i for i, account in enumerate(accounts)}
        if len(index) != len(accounts):
            seen: set[str] = set()
            for account in accounts:
                if account in seen:
                    raise ValueError(f"account {account!r} appears more than once")
                seen.add(account)
        # Salts and leaf hashes in one pass: the HMAC pads are precomputed hash states.
        salter = _Hmac(secret)
        inner_copy, outer_copy = salter.inner.copy, salter.outer.copy
        epoch_bytes = epoch.to_bytes(8, "big")
        prefix = LEAF_TAG + epoch_bytes
        sha = hashlib.sha256
        salts: list[bytes] = []
        hashes: list[bytes] = []
        add_salt, add_hash = salts.append, hashes.append
        for raw, amount in zip(raws, cents, strict=True):
            inner = inner_copy()
            inner.update(raw + epoch_bytes)
            outer = outer_copy()
            outer.update(inner.digest())
            salt = outer.digest()
            add_salt(salt)
            add_hash(
                sha(
                    prefix + salt + len(raw).to_bytes(2, "big") + raw + amount.to_bytes(16, "big")
                ).digest()
            )
        # Leaf order: ascending leaf hash (positions say nothing about account ids).
        leaf_matrix = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, HASH_BYTES)
        order = np.argsort(leaf_matrix.view(f"S{HASH_BYTES}").ravel(), kind="stable")
        positions = np.empty(len(order), dtype=np.int64)
        positions[order] = np.arange(len(order), dtype=np.int64)
        tree = cls._from_level(
            epoch, leaf_matrix[order].tobytes(), np.asarray(cents, dtype=np.uint64)[order]
        )
        tree.accounts, tree.salts, tree.index, tree.positions = accounts, salts, index, positions
        return tree

    @classmethod
    def from_nodes(cls, nodes: Sequence[tuple[bytes, int]], epoch: int = 0) -> MerkleSumTree:
        """A tree whose leaves are given (hash, sum) nodes as they are, in order (a top tree)."""
        for i, (h, s) in enumerate(nodes):
            if len(h) != HASH_BYTES:
                raise ValueError(f"node {i}: hash must be {HASH_BYTES} bytes")
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(f"node {i}: sum must be a non-negative integer")
        if sum(s for _, s in nodes) > MAX_TOTAL_CENTS:
            raise ValueError("the combined total exceeds 2**63 - 1 cents")
        sums = np.asarray([s for _, s in nodes], dtype=np.uint64)
        return cls._from_level(epoch, b"".join(h for h, _ in nodes), sums)

    @classmethod
    def _from_level(cls, epoch: int, hashes: bytes, sums: SumArray) -> MerkleSumTree:
        """Build every level above the given bottom level."""
        hash_levels = [hashes]
        sum_levels = [sums]
        while len(sums) > 1:
            hashes, sums = _next_level(hashes, sums)
            hash_levels.append(hashes)
            sum_levels.append(sums)
        return cls(epoch, hash_levels, sum_levels)

    @property
    def count(self) -> int:
        """Leaves in the tree (accounts, or partition roots for a top tree)."""
        return len(self.sum_levels[0])

    @property
    def root_hash(self) -> bytes:
        """The root hash (the empty node's for an empty tree)."""
        return self.hash_levels[-1][:HASH_BYTES] if self.count else EMPTY_HASH

    @property
    def total_cents(self) -> int:
        """The root sum: total liabilities in cents."""
        return int(self.sum_levels[-1][0]) if self.count else 0

    @property
    def root(self) -> tuple[bytes, int]:
        """The root as a (hash, sum) node."""
        return self.root_hash, self.total_cents

    def node(self, level: int, position: int) -> tuple[bytes, int]:
        """The (hash, sum) at a level and position; past the end, the empty padding node."""
        if position >= len(self.sum_levels[level]):
            return EMPTY_HASH, 0
        start = position * HASH_BYTES
        return (
            self.hash_levels[level][start : start + HASH_BYTES],
            int(self.sum_levels[level][position]),
        )

    def node_path(self, leaf_index: int) -> list[ProofStep]:
        """The sibling steps from a leaf up to (not including) the root."""
        if not 0 <= leaf_index < self.count:
            raise IndexError(f"leaf index {leaf_index} out of range for {self.count} leaves")
        steps: list[ProofStep] = []
        position = leaf_index
        for level in range(len(self.hash_levels) - 1):
            sibling_hash, sibling_sum = self.node(level, position ^ 1)
            steps.append(ProofStep(sibling_hash.hex(), sibling_sum, "L" if position & 1 else "R"))
            position >>= 1
        return steps

    def proof(self, account: str) -> InclusionProof:
        """The account's inclusion proof against this tree's root."""
        try:
            i = self.index[account]
        except KeyError:
            raise UnknownAccountError(f"account {account!r} is not in the tree") from None
        position = int(self.positions[i])
        return InclusionProof(
            epoch=self.epoch,
            account=account,
            salt=self.salts[i].hex(),
            liability_cents=int(self.sum_levels[0][position]),
            leaf_index=position,
            path=self.node_path(position),
            root_hash=self.root_hash.hex(),
            total_cents=self.total_cents,
        )


def combine_roots(partition_roots: Sequence[tuple[bytes, int]]) -> tuple[bytes, int]:
    """The combined root over per-partition roots (each partition root a leaf of a top tree)."""
    return MerkleSumTree.from_nodes(partition_roots).root


def extend_proof(
    proof: InclusionProof, top_tree: MerkleSumTree, partition_index: int
) -> InclusionProof:
    """A partition proof continued through the top tree so it verifies against the combined root."""
    if not 0 <= partition_index < top_tree.count:
        raise ValueError(f"partition {partition_index} is not in a top tree of {top_tree.count}")
    node_hash_, node_sum = top_tree.node(0, partition_index)
    if (node_hash_.hex(), node_sum) != (proof.root_hash, proof.total_cents):
        raise ValueError(f"the proof's root is not partition {partition_index} of the top tree")
    return InclusionProof(
        epoch=proof.epoch,
        account=proof.account,
        salt=proof.salt,
        liability_cents=proof.liability_cents,
        leaf_index=proof.leaf_index | (partition_index << len(proof.path)),
        path=[*proof.path, *top_tree.node_path(partition_index)],
        root_hash=top_tree.root_hash.hex(),
        total_cents=top_tree.total_cents,
        version=proof.version,
    )


@dataclass(frozen=True)
class PublishedRoot:
    """What goes on solvency-proofs: a root, its total and account count (partition or None)."""

    epoch: int
    root_hash: str
    total_liabilities_cents: int
    account_count: int
    partition: int | None


@dataclass(eq=False)
class PartitionedTree:
    """One tree per partition and a top tree over their roots; proofs go to the combined root."""

    epoch: int
    partitions: list[MerkleSumTree]
    top: MerkleSumTree
    where: dict[str, int]

    def __repr__(self) -> str:
        """A short summary."""
        return (
            f"PartitionedTree(epoch={self.epoch}, partitions={len(self.partitions)}, "
            f"count={self.count}, root_hash={self.root_hash.hex()}, total_cents={self.total_cents})"
        )

    @classmethod
    def build(
        cls, partitions: Sequence[Sequence[LeafInput]], secret: bytes, epoch: int
    ) -> PartitionedTree:
        """Build each partition's tree (accounts unique across partitions) and the top tree."""
        trees = [MerkleSumTree.build(leaves, secret, epoch) for leaves in partitions]
        where: dict[str, int] = {}
        for p, tree in enumerate(trees):
            for account in tree.accounts:
                if account in where:
                    raise ValueError(
                        f"account {account!r} is in partitions {where[account]} and {p}"
                    )
                where[account] = p
        top = MerkleSumTree.from_nodes([t.root for t in trees], epoch)
        return cls(epoch, trees, top, where)

    @property
    def root_hash(self) -> bytes:
        """The combined root hash."""
        return self.top.root_hash

    @property
    def total_cents(self) -> int:
        """The combined total liabilities in cents."""
        return self.top.total_cents

    @property
    def count(self) -> int:
        """Accounts across all partitions."""
        return len(self.where)

    def proof(self, account: str) -> InclusionProof:
        """The account's proof against the combined root."""
        if account not in self.where:
            raise UnknownAccountError(f"account {account!r} is not in the tree")
        p = self.where[account]
        return extend_proof(self.partitions[p].proof(account), self.top, p)

    def published_roots(self) -> list[PublishedRoot]:
        """Every partition's root, then the combined root (partition None)."""
        roots = [
            PublishedRoot(self.epoch, t.root_hash.hex(), t.total_cents, t.count, p)
            for p, t in enumerate(self.partitions)
        ]
        roots.append(
            PublishedRoot(self.epoch, self.root_hash.hex(), self.total_cents, self.count, None)
        )
        return roots


def leaves_from_liabilities(liabilities: Mapping[str, float]) -> list[LeafInput]:
    """Leaves from a mapping account -> equity in USD (liability = max(0, equity) in cents)."""
    leaves: list[LeafInput] = []
    for account, usd in liabilities.items():
        try:
            leaves.append(LeafInput(account, usd_to_liability_cents(usd)))
        except ValueError as exc:
            raise ValueError(f"account {account!r}: {exc}") from None
    return leaves


def prove_from_liabilities(
    liabilities: Mapping[str, float], account: str, epoch: int, secret: bytes
) -> tuple[InclusionProof, str, int]:
    """Build the epoch's tree from USD liabilities and return (account's proof, root hex, total)."""
    tree = MerkleSumTree.build(leaves_from_liabilities(liabilities), secret, epoch)
    return tree.proof(account), tree.root_hash.hex(), tree.total_cents
