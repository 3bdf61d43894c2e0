"""The scaling pieces free of a broker: the generations record, topic names per generation, the
plan's refusals, a routed input's origin, and the portfolio table re-keyed for a new layout."""

from __future__ import annotations

import base64
import zlib

import orjson
import pytest

from infra.settings import Settings
from streams.accounts.cursor import CURSOR_KEY
from streams.accounts.outbox import Encoded
from streams.accounts.portfolio import PortfolioRecord
from streams.market.table import LIVE_KEY, PART_KEYS
from streams.scaling.control import Layouts, Step, Switch
from streams.scaling.errors import ScaleRefused
from streams.scaling.layout import account_partition, drained_inputs, owned_topics
from streams.scaling.origin import HEADER, Origin, already_routed, origin_of
from streams.scaling.plan import make_plan
from streams.scaling.rekey import rekey

BASE = Settings(topic_prefix="x.", partitions=4, app_id="app")
G0 = BASE.for_generation(0, 4)
G1 = BASE.for_generation(1, 8)


def test_layouts_round_trip_and_say_when_workers_may_run() -> None:
    layouts = Layouts(1, {0: 4, 1: 8}, Switch(2, 16, Step.DRAINING))
    back = Layouts.from_json(layouts.to_json())
    assert back == layouts
    assert back.active_partitions == 8
    assert not back.runnable
    assert Layouts(1, {0: 4, 1: 8}, Switch(2, 16, Step.PREPARED)).runnable
    assert back.at(Step.COPIED).switch == Switch(2, 16, Step.COPIED)
    assert Layouts.initial(BASE) == Layouts(0, {0: 4})
    assert back.summary() == (
        "generation 1 in use, 8 account partitions (generation 0: 4, generation 1: 8); "
        "a scale to generation 2 (16) is at step draining"
    )
    assert Layouts.initial(BASE).summary().endswith("(generation 0: 4); no scale under way")


def test_generation_zero_keeps_every_name_and_a_later_one_has_its_own() -> None:
    assert G0.account_topic("fills") == "x.fills"
    assert G0.portfolios_changelog() == BASE.changelog_topic("portfolios")
    assert G0.data_dir == BASE.data_dir
    assert G1.account_topic("fills") == "x.g1.fills"
    assert G1.portfolios_changelog() == "x.app-g1-portfolios-changelog"
    assert G1.data_dir == BASE.data_dir / "g1"
    assert G1.layout_partitions == 8
    assert G1.topic("fills") == "x.fills"  # the input topic itself never moves
    for full in ("x.fills", "x.g1.fills", "x.g12.fills"):
        assert G1.logical_topic(full) == "fills"
    assert G1.logical_topic("x.gx.fills") == "gx.fills"
    assert G1.generations_topic() == "x.app-generations"


def test_owned_and_drained_topics() -> None:
    assert [(t.name, t.partitions, t.compacted) for t in owned_topics(G0)] == [
        ("x.app-portfolios-changelog", 4, True)
    ]
    names = {t.name: t.partitions for t in owned_topics(G1)}
    assert names == {
        "x.app-g1-portfolios-changelog": 8,
        "x.g1.fills": 8,
        "x.g1.collateral": 8,
        "x.g1.market-broadcast": 8,
    }
    assert drained_inputs(G0) == ["x.market-broadcast"]
    assert set(drained_inputs(G1)) == {"x.g1.fills", "x.g1.collateral", "x.g1.market-broadcast"}


def test_an_account_lands_where_librdkafka_puts_its_key() -> None:
    for account in ("acct-0001", "a", ""):
        key = account.encode()
        assert account_partition(key, 8) == zlib.crc32(key) % 8
        assert account_partition(key, 8) % 4 == account_partition(key, 4)  # a split
    assert account_partition(None, 8) == 0


def test_the_plan_refuses_fewer_partitions_and_a_second_scale() -> None:
    layouts = Layouts.initial(BASE)
    with pytest.raises(ScaleRefused, match="only grows"):
        make_plan(BASE, layouts, 4, 0)
    under_way = Layouts(0, {0: 4}, Switch(1, 8, Step.DRAINING))
    with pytest.raises(ScaleRefused, match="under way"):
        make_plan(BASE, under_way, 16, 0)
    plan = make_plan(BASE, under_way, 8, 40_000)
    assert (plan.old.generation, plan.new.generation, plan.resuming) == (0, 1, Step.DRAINING)
    text = "\n".join(plan.lines())
    assert "x.g1.fills: 8 partitions" in text
    assert "x.app-g1-portfolios-changelog: 8 partitions, compacted" in text
    assert "up to 40000" in text and "resuming after step draining" in text
    assert plan.expected_s > make_plan(BASE, layouts, 8, 0).expected_s


def test_an_origin_rides_in_a_header_and_marks_copies() -> None:
    origin = Origin("x.fills", 3, 41)
    name, value = origin.header()
    assert name == HEADER
    assert origin_of([(name, value)]) == origin
    assert origin_of([(name.encode(), value)]) == origin
    assert origin_of({name: value}) == origin
    assert origin_of(None) is None and origin_of([("other", b"1")]) is None
    assert already_routed({"x.fills": 41}, origin)
    assert not already_routed({"x.fills": 40}, origin)
    assert not already_routed({"x.collateral": 99}, origin)


def _outbox(topic: str, key: str, value: bytes) -> list[object]:
    return ["x.fills", 0, 7, [[topic, key, base64.b64encode(value).decode()]]]


def test_rekey_moves_accounts_keeps_upstream_offsets_and_hands_outboxes_back() -> None:
    table: dict[str, bytes] = {}
    for i in range(40):
        account = f"acct-{i:04d}"
        record = PortfolioRecord(account, partition=account_partition(account.encode(), 4))
        record.offsets = {"x.fills": i, "x.collateral": 2 * i, "x.g7.fills": 5}
        record.collateral = {"USDC": float(i)}
        if i == 3:
            record.outbox = [_outbox("margin-status", account, b"status-3")]
        table[account] = record.to_json()
    for p in range(4):
        live = {"applied": 90 + p, "outbox": [], "candidates_ts": p}
        if p == 1:
            live["outbox"] = [_outbox("solvency-proofs", "e1", b"root")]
        table[LIVE_KEY.format(partition=p)] = orjson.dumps(live)
        table[PART_KEYS["vols"].format(partition=p)] = orjson.dumps({"vols": p})
        table[CURSOR_KEY.format(partition=p)] = orjson.dumps({"x.fills": 1})
    out = rekey(table, G0, G1)
    assert out.accounts == 40 and out.dropped == 4
    assert sorted(out.resend, key=lambda e: e.topic) == [
        Encoded("margin-status", "acct-0003", b"status-3"),
        Encoded("solvency-proofs", "e1", b"root"),
    ]
    records = {k: (p, PortfolioRecord.from_json(v)) for p, k, v in out.writes if k[0] != "\x00"}
    assert len(records) == 40
    for key, (partition, record) in records.items():
        i = int(key[-4:])
        assert partition == record.partition == zlib.crc32(key.encode()) % 8
        assert record.offsets == {"x.fills": i, "x.collateral": 2 * i}
        assert record.collateral == {"USDC": float(i)} and record.outbox == []
    markets = {k: (p, orjson.loads(v)) for p, k, v in out.writes if k[0] == "\x00"}
    assert len(markets) == 16  # live and vols for each of the 8 new partitions
    for q in range(8):
        partition, live = markets[LIVE_KEY.format(partition=q)]
        assert partition == q
        assert live == {"applied": -1, "outbox": [], "candidates_ts": q % 4}
        assert markets[PART_KEYS["vols"].format(partition=q)] == (q, {"vols": q % 4})
