"""The .avsc files: every schema parses and is documented, agrees with its model, and evolves
BACKWARD-compatibly (a vN+1 reader reads vN data; added fields have defaults)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from schemas import SCHEMAS_DIR
from streams import records as r
from streams.codec import registry as registry_module
from streams.codec.registry import FolderRegistry, fingerprint_id, load_folder
from streams.topics.catalog import CATALOG, TOPICS
from tests.streams.schema_projection import project

ALL = load_folder(SCHEMAS_DIR)
NAMES = [f"{record}.v{v}" for record, vs in ALL.items() for v in sorted(vs)]
EVOLVED = [(record, v) for record, vs in ALL.items() for v in sorted(vs) if v > 1]
TS_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}

ENUMS: dict[str, type[StrEnum]] = {
    "Side": r.Side,
    "Liquidity": r.Liquidity,
    "TransferKind": r.TransferKind,
    "InstrumentKind": r.InstrumentKind,
    "OptionType": r.OptionType,
    "InstrumentState": r.InstrumentState,
    "AccountState": r.AccountState,
    "FundEventKind": r.FundEventKind,
    "DlqReason": r.DlqReason,
    "MarketUpdateKind": r.MarketUpdateKind,
}


def _schema(name: str) -> dict[str, Any]:
    """A schema by ``<record>.v<N>``."""
    record, version = name.split(".v")
    return ALL[record][int(version)]


def _walk(schema: Any) -> list[dict[str, Any]]:
    """Every named type or field-bearing dict of a schema, nested ones included."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, list):
        for branch in schema:
            found += _walk(branch)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum"):
            found.append(schema)
        for field in schema.get("fields", []):
            found += _walk(field["type"])
        for key in ("items", "values"):
            if key in schema:
                found += _walk(schema[key])
    return found


def _fields(schema: Any) -> list[dict[str, Any]]:
    """Every field of a schema and of the records nested in it."""
    return [f for t in _walk(schema) if t["type"] == "record" for f in t["fields"]]


@pytest.mark.parametrize("name", NAMES)
def test_schema_parses_and_documents_every_field(name: str) -> None:
    """Each schema parses, lives in io.spma.v1, and documents itself, its types and fields."""
    schema = _schema(name)
    parse_schema(schema)
    assert schema["type"] == "record" and schema.get("namespace") == "io.spma.v1"
    assert schema.get("doc"), f"{name}: no record doc"
    for named in _walk(schema):
        assert named.get("doc"), f"{name}: {named['name']} has no doc"
    for field in _fields(schema):
        assert field.get("doc"), f"{name}: field {field['name']} has no doc"
        kind = field["type"]
        if isinstance(kind, list):
            assert kind[0] == "null" and len(kind) == 2, f"{name}.{field['name']}: want [null, T]"
            assert "default" in field and field["default"] is None, f"{name}.{field['name']}"
    ts = [f for f in schema["fields"] if f["name"] == "ts"]
    assert ts and ts[0]["type"] == TS_MILLIS, f"{name}: ts must be timestamp-millis"


@pytest.mark.parametrize("name", NAMES)
def test_timestamps_are_millis_and_versions_keep_the_name(name: str) -> None:
    """Time fields are timestamp-millis, and every version of a stem keeps one record name."""
    schema = _schema(name)
    for field in _fields(schema):
        if field["name"] in ("ts", "deadline", "expiry"):
            kinds = field["type"] if isinstance(field["type"], list) else [field["type"]]
            assert TS_MILLIS in kinds, f"{name}.{field['name']}"
    stem = name.split(".v")[0]
    assert {v["name"] for v in ALL[stem].values()} == {schema["name"]}, "one record per stem"


def test_enums_share_their_symbols_with_the_python_enums() -> None:
    """A record's newest schema and the models' Python enums have the same symbols in the same
    order; an older schema's are a prefix of them (symbols are only ever added at the end)."""
    seen = set()
    for name in NAMES:
        record, version = name.split(".v")
        newest = int(version) == max(ALL[record])
        for named in _walk(_schema(name)):
            if named["type"] == "enum":
                python = [m.value for m in ENUMS[named["name"]]]
                symbols = named["symbols"]
                want = python if newest else python[: len(symbols)]
                assert symbols == want, f"{name}: {named['name']}"
                seen.add(named["name"])
    assert seen == set(ENUMS)


def test_catalog_schemas_and_topics_agree() -> None:
    """Every schema file backs a catalogued topic, and every catalogued topic gets created."""
    used = {t.record for entry in CATALOG.values() for t in entry.types()}
    assert used == set(ALL), "every schema file is some topic's record, and the reverse"
    assert set(CATALOG) <= {spec.name for spec in TOPICS}


def _model_pairs() -> list[tuple[str, Any, type[r.Record]]]:
    """(where, record schema, model) for every catalogued record and the nested records."""
    pairs: list[tuple[str, Any, type[r.Record]]] = []
    for entry in CATALOG.values():
        for kind in entry.types():
            latest = ALL[kind.record][max(ALL[kind.record])]
            pairs.append((kind.record, latest, kind.model))
    status = {f["name"]: f for f in ALL["margin_status"][max(ALL["margin_status"])]["fields"]}
    pairs.append(("components", status["components"]["type"]["items"], r.UnderlyingComponent))
    update = {f["name"]: f for f in ALL["market_update"][max(ALL["market_update"])]["fields"]}
    nested: list[tuple[str, type[r.Record]]] = [
        ("depth", r.BookDepth),
        ("vol", r.VolSurfaceRecord),
        ("instrument", r.InstrumentRecord),
        ("params", r.RiskParamsRecord),
    ]
    for name, model in nested:
        pairs.append((f"market_update.{name}", update[name]["type"][1], model))
    return pairs


@pytest.mark.parametrize(("where", "schema", "model"), _model_pairs(), ids=lambda x: str(x)[:30])
def test_models_match_the_latest_schemas(where: str, schema: Any, model: type[r.Record]) -> None:
    """A model has the latest schema's fields, with the same defaults (Avro readers fill them)."""
    fields = {f["name"]: f for f in schema["fields"]}
    assert set(fields) == set(model.model_fields), where
    for name, field in fields.items():
        info = model.model_fields[name]
        if "default" in field:
            assert not info.is_required(), f"{where}.{name}: the model needs the Avro default"
            assert info.get_default(call_default_factory=True) == field["default"], name
        else:
            assert info.is_required(), f"{where}.{name}: a model default needs an Avro default"


@pytest.mark.parametrize(
    ("payload", "record"),
    [
        ("depth", "book_depth"),
        ("vol", "vol_surface"),
        ("instrument", "instrument"),
        ("params", "risk_params"),
    ],
)
def test_market_update_payloads_mirror_the_input_schemas(payload: str, record: str) -> None:
    """The broadcast's payload records are the input records under another name (no drift)."""
    update = {f["name"]: f for f in ALL["market_update"][max(ALL["market_update"])]["fields"]}
    inner = update[payload]["type"][1]
    source = ALL[record][max(ALL[record])]
    renamed = {**inner, "name": source["name"], "namespace": source["namespace"]}
    assert to_parsing_canonical_form(parse_schema(renamed, _write_hint=False)) == (
        to_parsing_canonical_form(parse_schema(source, _write_hint=False))
    )


def _sample(
    schema: Any, variant: int, named: dict[str, Any], avoid: frozenset[str] = frozenset()
) -> Any:
    """A value of a (JSON) schema: variant 0 takes first branches and symbols, 1 the last ones
    (of the enum symbols not in ``avoid``)."""
    if isinstance(schema, list):
        return _sample(schema[0] if variant == 0 else schema[-1], variant, named, avoid)
    if isinstance(schema, str):
        primitives = {
            "string": f"s{variant}",
            "double": 1.5 + variant,
            "long": 7 + variant,
            "int": 3 + variant,
            "boolean": bool(variant),
            "bytes": b"b" * (variant + 1),
            "null": None,
        }
        if schema in primitives:
            return primitives[schema]
        return _sample(named[schema.rsplit(".", 1)[-1]], variant, named, avoid)
    kind = schema["type"]
    if schema.get("logicalType") == "timestamp-millis":
        return datetime(2026, 1, 1, 0, 0, variant, tzinfo=UTC)
    if kind == "record":
        named[schema["name"]] = schema
        return {f["name"]: _sample(f["type"], variant, named, avoid) for f in schema["fields"]}
    if kind == "enum":
        named[schema["name"]] = schema
        symbols = [x for x in schema["symbols"] if x not in avoid]
        return symbols[0 if variant == 0 else -1]
    if kind == "array":
        return [_sample(schema["items"], variant, named, avoid) for _ in range(variant + 1)]
    if kind == "map":
        return {
            f"k{i}": _sample(schema["values"], variant, named, avoid) for i in range(variant + 1)
        }
    return _sample(kind, variant, named, avoid)


def _added_symbols(old: Any, new: Any) -> frozenset[str]:
    """Symbols the new schema adds to enums the old one already has."""
    before = {n["name"]: set(n["symbols"]) for n in _walk(old) if n["type"] == "enum"}
    return frozenset(
        x
        for n in _walk(new)
        if n["type"] == "enum" and n["name"] in before
        for x in n["symbols"]
        if x not in before[n["name"]]
    )


def _round(writer: Any, reader: Any, value: Any) -> Any:
    """Write with one schema, read with another (fastavro resolution)."""
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(writer), value)
    buffer.seek(0)
    return schemaless_reader(buffer, parse_schema(writer), parse_schema(reader))


@pytest.mark.parametrize(("record", "version"), EVOLVED)
@pytest.mark.parametrize("variant", [0, 1])
def test_each_version_reads_data_of_the_previous_one(
    record: str, version: int, variant: int
) -> None:
    """BACKWARD: a vN+1 reader reads vN data; added fields have defaults and read as them."""
    old, new = ALL[record][version - 1], ALL[record][version]
    old_fields = {f["name"]: f for f in old["fields"]}
    new_fields = {f["name"]: f for f in new["fields"]}
    for name, field in new_fields.items():
        if name not in old_fields:
            assert "default" in field, f"{record}.v{version}: new field {name} needs a default"
    value = _sample(old, variant, {})
    read = _round(old, new, value)
    for name, field in new_fields.items():
        if name in old_fields:
            assert project(read[name], old_fields[name]["type"]) == value[name], name
        else:
            assert read[name] == field["default"], name


@pytest.mark.parametrize(("record", "version"), EVOLVED)
@pytest.mark.parametrize("variant", [0, 1])
def test_old_readers_read_the_next_version(record: str, version: int, variant: int) -> None:
    """Rolling upgrades: a worker still on vN reads what an upgraded producer writes (enum
    symbols the new version adds excepted: see the next test)."""
    old, new = ALL[record][version - 1], ALL[record][version]
    value = _sample(new, variant, {}, _added_symbols(old, new))
    read = _round(new, old, value)
    assert set(read) == {f["name"] for f in old["fields"]}
    assert read == project(value, old)


@pytest.mark.parametrize(("record", "version"), EVOLVED)
def test_an_enum_that_gains_symbols_gains_a_default(record: str, version: int) -> None:
    """A reader cannot know a symbol added after it: an enum that gains symbols carries a
    default from then on, so that readers of this version read any later symbol as it (the
    dlq's v1 readers must be upgraded before STALE_PARAMS is written: README)."""
    old, new = ALL[record][version - 1], ALL[record][version]
    for named in _walk(new):
        if named["type"] != "enum":
            continue
        before = next((o for o in _walk(old) if o.get("name") == named["name"]), None)
        if before is not None and set(named["symbols"]) - set(before["symbols"]):
            assert named.get("default") in named["symbols"], named["name"]
            later = {**named, "symbols": [*named["symbols"], "LATER"]}
            assert _round(later, named, "LATER") == named["default"]


def test_evolutions_exist_for_fill_and_the_outputs_extended_since() -> None:
    """The evolved versions the compatibility tests rely on are in the folder."""
    assert {("fill", 2), ("margin_call", 2), ("liquidation_order", 2)} <= set(EVOLVED)


def test_folder_ids_are_distinct_31_bit_fingerprints() -> None:
    """Folder ids are the 31-bit SHA-256 fingerprints, distinct, and subjects resolve."""
    registry = FolderRegistry(SCHEMAS_DIR)
    assert registry.version("fill", 1).schema_id == fingerprint_id(ALL["fill"][1])
    assert registry.version("fill").version == max(ALL["fill"])
    assert registry.latest("io.spma.v1.Fill") == registry.version("fill")
    ids = [v.schema_id for vs in registry.records().values() for v in vs.values()]
    assert len(set(ids)) == len(ids)
    assert all(0 < i < 2**31 for i in ids)


def test_folder_registry_detects_collisions_and_shares_ids_of_equal_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal canonical forms share an id; different schemas with one id are refused."""
    fill = ALL["fill"][1]
    (tmp_path / "fill.v1.avsc").write_text(json.dumps(fill))
    (tmp_path / "fill.v2.avsc").write_text(json.dumps({**fill, "doc": "only the doc changed"}))
    registry = FolderRegistry(tmp_path)
    assert registry.version("fill", 1).schema_id == registry.version("fill", 2).schema_id
    (tmp_path / "oracle_price.v1.avsc").write_text(json.dumps(ALL["oracle_price"][1]))
    monkeypatch.setattr(registry_module, "fingerprint_id", lambda schema: 42)
    with pytest.raises(ValueError, match="collision"):
        FolderRegistry(tmp_path)


def test_folder_registry_rejects_badly_named_files(tmp_path: Path) -> None:
    """A schema file must be named <record>.v<N>.avsc."""
    (tmp_path / "fill.avsc").write_text(json.dumps(ALL["fill"][1]))
    with pytest.raises(ValueError, match=r"<record>\.v<N>\.avsc"):
        FolderRegistry(tmp_path)
