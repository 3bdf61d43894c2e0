"""What a reader of an older schema keeps of a value: the fields that schema names, through
nested records, unions and arrays (a record evolves inside another: market_update v2 carries
instrument v2's fields)."""

from __future__ import annotations

from typing import Any


def project(value: Any, schema: Any) -> Any:
    """The value as seen through ``schema``: fields it does not name dropped, at every depth."""
    if value is None:
        return None
    if isinstance(schema, list):  # a union: the record branch for a mapping
        records = [b for b in schema if isinstance(b, dict) and b.get("type") == "record"]
        return project(value, records[0]) if records and isinstance(value, dict) else value
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if isinstance(kind, dict | list):
        return project(value, kind)
    if kind == "record":
        return {
            f["name"]: project(value[f["name"]], f["type"])
            for f in schema["fields"]
            if f["name"] in value
        }
    if kind == "array":
        return [project(v, schema["items"]) for v in value]
    return value
