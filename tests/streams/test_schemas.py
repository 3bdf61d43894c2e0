"""Every schema parses, documents every field, and evolves BACKWARD-compatibly."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from streams.codec.catalog import CATALOG
from streams.codec.registry import FolderRegistry, fingerprint_id, load_folder

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ALL = load_folder(SCHEMAS)


def _fields(schema: Any) -> list[dict[str, Any]]:
    """Every field of a schema and of the records nested in it."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        for field in schema.get("fields", []):
            found.append(field)
            found += _fields(field["type"])
        found += _fields(schema.get("items")) + _fields(schema.get("values"))
    elif isinstance(schema, list):
        for branch in schema:
            found += _fields(branch)
    return found


@pytest.mark.parametrize("name", [f"{r}.v{v}" for r, vs in ALL.items() for v in vs])
def test_schema_parses_and_documents_every_field(name: str) -> None:
    record, version = name.split(".v")
    schema = ALL[record][int(version)]
    parse_schema(schema)
    assert schema.get("namespace") == "io.spma.v1" and schema.get("doc")
    for field in _fields(schema):
        assert field.get("doc"), f"{name}: field {field['name']} has no doc"
        if isinstance(field["type"], list) and "null" in field["type"]:
            assert "default" in field and field["default"] is None, field["name"]
    ts = [f for f in schema["fields"] if f["name"] == "ts"]
    assert ts and ts[0]["type"]["logicalType"] == "timestamp-millis"


def test_every_catalogued_topic_has_a_schema() -> None:
    for topic, entry in CATALOG.items():
        assert entry.record in ALL, topic


def _sample(schema: Any) -> Any:
    """A value of a (parsed-JSON) schema, built from its types."""
    if isinstance(schema, list):
        return _sample(schema[-1])
    if isinstance(schema, str):
        return {
            "string": "x",
            "double": 1.5,
            "long": 7,
            "int": 3,
            "boolean": True,
            "bytes": b"b",
            "null": None,
        }[schema]
    kind = schema["type"]
    if kind == "record":
        return {f["name"]: _sample(f["type"]) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "array":
        return [_sample(schema["items"])]
    if kind == "map":
        return {"k": _sample(schema["values"])}
    return _sample(kind)


EVOLVED = [(r, v) for r, vs in ALL.items() for v in vs if v > 1]


@pytest.mark.parametrize(("record", "version"), EVOLVED)
def test_each_version_reads_data_of_the_previous_one(record: str, version: int) -> None:
    old, new = ALL[record][version - 1], ALL[record][version]
    old_names = {f["name"] for f in old["fields"]}
    for field in new["fields"]:
        if field["name"] not in old_names:
            assert "default" in field, (
                f"{record}.v{version}: new field {field['name']} needs a default"
            )
    buffer = io.BytesIO()
    value = _sample(old)
    schemaless_writer(buffer, parse_schema(old), value)
    buffer.seek(0)
    read = schemaless_reader(buffer, parse_schema(old), parse_schema(new))
    for name in old_names & {f["name"] for f in new["fields"]}:
        assert read[name] == value[name] or name == "ts"
    # and forward: the old reader reads the new writer's data
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(new), _sample(new))
    buffer.seek(0)
    schemaless_reader(buffer, parse_schema(new), parse_schema(old))


def test_fill_has_an_evolved_version() -> None:
    assert ("fill", 2) in EVOLVED


def test_folder_ids_are_stable_fingerprints() -> None:
    registry = FolderRegistry(SCHEMAS)
    fill = registry.version("fill", 1)
    assert fill.schema_id == fingerprint_id(ALL["fill"][1])
    assert registry.version("fill").version == 2
    ids = [v.schema_id for vs in registry.records().values() for v in vs.values()]
    assert len(set(ids)) == len(ids)
    assert all(0 < i < 2**31 for i in ids)
