"""The fund's ADL candidates survive a crash: each candidate record read is written with its
partition's batch, so a state written before them, restored with the batches, closes a claim
that comes after the crash by ADL (the consumer committed the candidates' offsets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from streams import records as r
from streams.fund.batches import batch_key, load_batches, save_batch, save_batches
from streams.fund.owner import FUND_KEY, FundOwner

TS = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _candidate(account: str, qty: float, partition: int) -> r.AdlCandidate:
    return r.AdlCandidate(
        account=account,
        instrument="BTC-PERPETUAL",
        qty=qty,
        rank_score=1.0,
        partition=partition,
        ts=TS,
    )


def _claim() -> r.InsuranceClaim:
    position = r.ClaimPosition(instrument="BTC-PERPETUAL", qty=2.0, mark=60_000.0, unit_value=1.0)
    return r.InsuranceClaim(
        claim_id="c1",
        account="broke",
        deficit=300.0,
        payouts_received=0.0,
        positions=[position],
        ts=TS,
    )


def _restart(table: dict[str, Any]) -> FundOwner:
    """What the fund agent restores from its table after a crash."""
    owner = FundOwner.from_dict(orjson.loads(table[FUND_KEY.format(currency="USD")]))
    load_batches(table, owner)
    return owner


def test_candidates_read_after_the_last_state_written_survive_a_crash() -> None:
    table: dict[str, Any] = {}
    owner = FundOwner()
    table[FUND_KEY.format(currency="USD")] = orjson.dumps(owner.to_dict())  # before any batch
    for cand in (_candidate("short-1", -1.5, 0), _candidate("short-2", -1.0, 3)):
        owner.on_candidate(cand)
        save_batch(table, owner, cand.partition)
    restored = _restart(table)
    assert restored.batches == owner.batches
    adl = [o.record for o in restored.on_claim(_claim()) if o.topic == "adl"]
    assert sorted((o.account, o.qty) for o in adl) == [("short-1", 1.5), ("short-2", 0.5)]
    assert not restored.pending


def test_without_the_batches_the_same_claim_finds_no_counterparty() -> None:
    """What the crash lost before: the state alone has no candidates."""
    owner = FundOwner()
    state = orjson.dumps(owner.to_dict())
    owner.on_candidate(_candidate("short-1", -5.0, 0))
    restored = FundOwner.from_dict(orjson.loads(state))
    assert [o for o in restored.on_claim(_claim()) if o.topic == "adl"] == []
    assert restored.pending


def test_a_batch_adl_used_is_written_shrunk_with_the_state() -> None:
    """ADL shrinks the candidates it used; the batches written with the state say so, so a
    restart never deleverages the same quantity twice."""
    table: dict[str, Any] = {}
    owner = FundOwner()
    owner.on_candidate(_candidate("short-1", -5.0, 1))
    save_batch(table, owner, 1)
    owner.on_claim(_claim())  # closes 2 of short-1's 5
    table[FUND_KEY.format(currency="USD")] = orjson.dumps(owner.to_dict())
    save_batches(table, owner)
    restored = _restart(table)
    assert [(c.account, c.qty) for c in restored.batches[1][1]] == [("short-1", -3.0)]


def test_batch_keys_are_the_funds_own() -> None:
    assert batch_key("USD", 7) == "fund/USD/candidates/7"
    table: dict[str, Any] = {"fund/USDC/candidates/1": orjson.dumps([1.0, []])}
    owner = FundOwner()
    load_batches(table, owner)  # another currency's batches are not this fund's
    assert owner.batches == {}
