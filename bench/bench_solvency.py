"""Proof-of-liabilities benchmark: the Merkle-sum tree over 1,000,000 accounts (section 13).

Prints (and returns) the time to build the epoch's tree (salts, leaf hashes, ordering, levels),
the leaves per second, and the time to produce and to verify one account's inclusion proof.
"""

from __future__ import annotations

import random
import time

from bench.report import Row, publish
from engine.solvency import LeafInput, MerkleSumTree, verify_proof

SECRET = bytes.fromhex("b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2")
EPOCH = 1
PROOF_SAMPLES = 2_000

RESULTS: dict[str, float] = {}


def bench_leaves(n: int, seed: int = 7) -> list[LeafInput]:
    """n accounts: a fifth with nothing owed, the rest log-spread from cents to $10M."""
    rng = random.Random(seed)
    return [
        LeafInput(f"acct-{i:08d}", 0 if i % 5 == 0 else int(10 ** rng.uniform(0, 9)))
        for i in range(n)
    ]


def run(n: int = 1_000_000) -> dict[str, float]:
    """Build the tree for n leaves, then time proofs and verifications on a sample of accounts."""
    leaves = bench_leaves(n)
    start = time.perf_counter()
    tree = MerkleSumTree.build(leaves, SECRET, EPOCH)
    build_s = time.perf_counter() - start
    assert tree.total_cents == sum(leaf.liability_cents for leaf in leaves)
    sample = [leaves[i].account for i in random.Random(1).sample(range(n), min(n, PROOF_SAMPLES))]
    start = time.perf_counter()
    proofs = [tree.proof(account) for account in sample]
    proof_us = (time.perf_counter() - start) / len(sample) * 1e6
    root = tree.root_hash.hex()
    start = time.perf_counter()
    for proof in proofs:
        verify_proof(proof, root, tree.total_cents)
    verify_us = (time.perf_counter() - start) / len(sample) * 1e6
    return {
        "leaves": float(n),
        "build_s": build_s,
        "leaves_per_s": n / build_s,
        "proof_us": proof_us,
        "verify_us": verify_us,
        "depth": float(len(proofs[0].path)),
    }


def main() -> dict[str, float]:
    """Run, print the table, keep the figures (RESULTS and reports/bench_solvency.json)."""
    figures = run()
    RESULTS.clear()
    RESULTS.update(figures)
    rows = [
        Row(f"build the tree of {int(figures['leaves']):,} leaves", figures["build_s"], "s"),
        Row("  leaves a second", figures["leaves_per_s"], "/s"),
        Row(f"one account's proof (depth {int(figures['depth'])})", figures["proof_us"], "µs"),
        Row("verify one proof", figures["verify_us"], "µs"),
    ]
    publish("solvency", "proof of liabilities (Merkle-sum tree, SHA-256)", rows, dict(figures))
    return figures


if __name__ == "__main__":
    main()
