"""Schema registries: the schemas folder (ids from canonical-form fingerprints) or a Confluent
Schema Registry. Both map a record's full name to its versions and an id to a parsed schema.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from streams.codec.errors import CodecError
from streams.records import DlqReason

FILE_NAME = re.compile(r"^(?P<record>[a-z0-9_]+)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class SchemaVersion:
    """One version of a record's schema with its id."""

    record: str
    version: int
    schema_id: int
    schema: dict[str, Any]
    parsed: Any


class SchemaRegistry(Protocol):
    """Where schema ids come from."""

    def version(self, record: str, version: int | None = None) -> SchemaVersion:
        """A record's schema (latest when version is None), registered if need be."""
        ...

    def by_id(self, schema_id: int) -> Any:
        """The parsed writer schema of an id; CodecError(UNKNOWN_SCHEMA_ID) when unknown."""
        ...


def fingerprint_id(schema: dict[str, Any]) -> int:
    """A schema's id: the first 4 bytes of SHA-256 of its parsing canonical form, 31 bits."""
    canonical = to_parsing_canonical_form(parse_schema(schema, _write_hint=False))
    digest = hashlib.sha256(canonical.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def load_folder(folder: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """Every ``<record>.v<N>.avsc`` of a folder: record -> version -> schema."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.avsc")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: want <record>.v<N>.avsc")
        found.setdefault(match["record"], {})[int(match["version"])] = json.loads(path.read_text())
    return found


class FolderRegistry:
    """The schemas folder as a registry: every process derives the same ids, no server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._versions: dict[str, dict[int, SchemaVersion]] = {}
        self._by_id: dict[int, SchemaVersion] = {}
        for record, versions in load_folder(folder).items():
            for number, schema in versions.items():
                self._add(
                    SchemaVersion(
                        record, number, fingerprint_id(schema), schema, parse_schema(schema)
                    )
                )

    def _add(self, entry: SchemaVersion) -> None:
        """Index a version; two different schemas with one id is an error."""
        other = self._by_id.get(entry.schema_id)
        if other is not None and other.schema != entry.schema:
            raise ValueError(
                f"schema id collision: {other.record}.v{other.version} and "
                f"{entry.record}.v{entry.version}"
            )
        self._by_id[entry.schema_id] = entry
        self._versions.setdefault(entry.record, {})[entry.version] = entry

    def records(self) -> dict[str, dict[int, SchemaVersion]]:
        """Every record and its versions."""
        return self._versions

    def version(self, record: str, version: int | None = None) -> SchemaVersion:
        """A record's schema version (latest by default)."""
        versions = self._versions.get(record)
        if not versions:
            raise KeyError(f"no schema for record {record!r} in {self.folder}")
        number = max(versions) if version is None else version
        if number not in versions:
            raise KeyError(f"record {record!r} has no version {number}")
        return versions[number]

    def by_id(self, schema_id: int) -> Any:
        """The parsed schema of an id."""
        entry = self._by_id.get(schema_id)
        if entry is None:
            raise CodecError(
                DlqReason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is not in {self.folder}"
            )
        return entry.parsed


class ConfluentRegistry:
    """A Confluent Schema Registry (or ``mock://`` for tests), with the folder's schemas."""

    def __init__(self, url: str, folder: Path, config: dict[str, str] | None = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.client = SchemaRegistryClient.new_client({"url": url, **(config or {})})
        self._local = load_folder(folder)
        self._ids: dict[tuple[str, int], SchemaVersion] = {}
        self._parsed: dict[int, Any] = {}

    def version(self, record: str, version: int | None = None) -> SchemaVersion:
        """Register (idempotently) and return a version of a record's schema."""
        from confluent_kafka.schema_registry import Schema

        versions = self._local.get(record)
        if not versions:
            raise KeyError(f"no schema for record {record!r}")
        number = max(versions) if version is None else version
        key = (record, number)
        if key not in self._ids:
            schema = versions[number]
            subject = f"{schema.get('namespace', '')}.{schema['name']}".lstrip(".")
            schema_id = self.client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
            parsed = parse_schema(schema)
            self._parsed[schema_id] = parsed
            self._ids[key] = SchemaVersion(record, number, schema_id, schema, parsed)
        return self._ids[key]

    def by_id(self, schema_id: int) -> Any:
        """The parsed schema of an id, fetched once from the registry."""
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            try:
                text = self.client.get_schema(schema_id).schema_str
            except Exception as exc:
                raise CodecError(
                    DlqReason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id}: {exc}"
                ) from None
            parsed = parse_schema(json.loads(text or "null"))
            self._parsed[schema_id] = parsed
        return parsed
