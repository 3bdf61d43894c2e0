"""Schema registries: the schemas folder (ids from canonical-form fingerprints) or a Confluent
Schema Registry. Subjects are records' full Avro names (RecordNameStrategy); the folder's file stem
(``fill`` for ``fill.v2.avsc``) names a record too.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from schemas import SCHEMAS_DIR
from streams.codec.errors import CodecError
from streams.records import DlqReason

FILE_NAME = re.compile(r"^(?P<record>[a-z0-9_]+)\.v(?P<version>[1-9]\d*)\.avsc$")

Schema = dict[str, Any]


@dataclass(frozen=True)
class SchemaVersion:
    """One registered version of a record's schema: its id, JSON and fastavro-parsed form."""

    record: str
    version: int
    schema_id: int
    schema: Schema
    parsed: Any

    @property
    def full_name(self) -> str:
        """The record's full Avro name, its subject (``io.spma.v1.Fill``)."""
        return full_name(self.schema)


class SchemaRegistry(Protocol):
    """Where schema ids come from and where a writer's id leads back to its schema."""

    def register(self, subject: str, schema: Schema | str) -> int:
        """The id of a schema under a subject, registering it if new (idempotent)."""
        ...

    def schema_by_id(self, schema_id: int) -> Any:
        """The parsed schema of an id; CodecError(UNKNOWN_SCHEMA_ID) when nobody registered it."""
        ...

    def latest(self, subject: str) -> SchemaVersion:
        """The newest version registered under a subject (KeyError when none)."""
        ...

    def version(self, record: str, version: int | None = None) -> SchemaVersion:
        """A version of a record this code was built with (the folder's; latest when None)."""
        ...


def full_name(schema: Mapping[str, Any]) -> str:
    """The full name of a named schema: namespace.name unless the name is already dotted."""
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def canonical_form(schema: Schema) -> str:
    """The Avro parsing canonical form (what ids and equality of writers are based on)."""
    return str(to_parsing_canonical_form(parse_schema(schema, _write_hint=False)))


def fingerprint_id(schema: Schema) -> int:
    """A schema's id: the first 4 bytes of SHA-256 of its parsing canonical form, 31 bits."""
    digest = hashlib.sha256(canonical_form(schema).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _as_schema(schema: Schema | str) -> Schema:
    """A schema given as JSON text or as a mapping, as a mapping."""
    loaded = json.loads(schema) if isinstance(schema, str) else schema
    if not isinstance(loaded, dict) or loaded.get("type") != "record":
        raise ValueError("want an Avro record schema")
    return loaded


def load_folder(folder: Path) -> dict[str, dict[int, Schema]]:
    """Every ``<record>.v<N>.avsc`` of a folder: record -> version -> schema."""
    found: dict[str, dict[int, Schema]] = {}
    for path in sorted(folder.glob("*.avsc")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: want <record>.v<N>.avsc")
        found.setdefault(match["record"], {})[int(match["version"])] = _as_schema(path.read_text())
    return found


class _Local:
    """The folder's schemas indexed by file stem and by full name (shared by both registries)."""

    def __init__(self, folder: Path) -> None:
        """Load and index the folder's schema files (file stem and full name)."""
        self.folder = folder
        self.schemas = load_folder(folder)
        self.stem_of: dict[str, str] = {}
        for record, versions in self.schemas.items():
            for schema in versions.values():
                other = self.stem_of.setdefault(full_name(schema), record)
                if other != record:
                    raise ValueError(f"{full_name(schema)} is in both {other}.* and {record}.*")

    def stem(self, subject: str) -> str:
        """The file stem of a subject or of a stem."""
        return self.stem_of.get(subject, subject)

    def pick(self, record: str, version: int | None) -> tuple[str, int, Schema]:
        """A record's schema file of a version (latest when None), or KeyError."""
        stem = self.stem(record)
        versions = self.schemas.get(stem)
        if not versions:
            raise KeyError(f"no schema for record {record!r} in {self.folder}")
        number = max(versions) if version is None else version
        if number not in versions:
            raise KeyError(f"record {record!r} has no version {number} in {self.folder}")
        return stem, number, versions[number]


class FolderRegistry:
    """The schemas folder as a registry: every process derives the same ids, with no server.

    ``register`` adds a schema in memory (this process only); ``version(record)`` stays the
    folder's latest, the writer this code was built with, while ``latest`` sees registrations.
    """

    def __init__(self, folder: Path = SCHEMAS_DIR) -> None:
        """Load every schema of the folder and derive its id; refuse collisions."""
        self.folder = folder
        self._local = _Local(folder)
        self._versions: dict[str, dict[int, SchemaVersion]] = {}
        self._by_id: dict[int, SchemaVersion] = {}
        self._canonical: dict[int, str] = {}
        self._lock = threading.Lock()
        for record, versions in self._local.schemas.items():
            for number in sorted(versions):
                self._add(record, number, versions[number])
        self._folder_latest = {record: max(vs) for record, vs in self._local.schemas.items()}

    def _add(self, record: str, number: int, schema: Schema) -> SchemaVersion:
        """Index a version; two different canonical forms with one id is a collision."""
        canonical = canonical_form(schema)
        schema_id = fingerprint_id(schema)
        known = self._canonical.setdefault(schema_id, canonical)
        if known != canonical:
            other = self._by_id[schema_id]
            raise ValueError(
                f"schema id collision ({schema_id}): {other.record}.v{other.version} and "
                f"{record}.v{number} differ but share a fingerprint prefix"
            )
        first = self._by_id.get(schema_id)
        # Versions differing only in docs or defaults write the same bytes: they share an id and
        # the writer's parsed schema, so that reading them takes the no-resolution fast path.
        parsed = first.parsed if first is not None else parse_schema(schema)
        entry = SchemaVersion(record, number, schema_id, schema, parsed)
        self._by_id.setdefault(schema_id, entry)
        self._versions.setdefault(record, {})[number] = entry
        return entry

    def records(self) -> dict[str, dict[int, SchemaVersion]]:
        """Every record (file stem) and its versions."""
        return self._versions

    def register(self, subject: str, schema: Schema | str) -> int:
        """The fingerprint id of a schema, added in memory as the subject's next version if new."""
        loaded = _as_schema(schema)
        schema_id = fingerprint_id(loaded)
        stem = self._local.stem(subject)
        with self._lock:
            versions = self._versions.get(stem, {})
            for entry in versions.values():
                if entry.schema_id == schema_id:
                    return schema_id
            number = max(versions, default=0) + 1
            self._local.stem_of.setdefault(full_name(loaded), stem)
            return self._add(stem, number, loaded).schema_id

    def schema_by_id(self, schema_id: int) -> Any:
        """The parsed schema of an id."""
        entry = self._by_id.get(schema_id)
        if entry is None:
            raise CodecError(
                DlqReason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is not in {self.folder}"
            )
        return entry.parsed

    def latest(self, subject: str) -> SchemaVersion:
        """The newest version of a subject (full name or file stem), registrations included."""
        versions = self._versions.get(self._local.stem(subject))
        if not versions:
            raise KeyError(f"no schema registered under {subject!r}")
        return versions[max(versions)]

    def version(self, record: str, version: int | None = None) -> SchemaVersion:
        """A record's schema version (the folder's latest by default)."""
        stem = self._local.stem(record)
        versions = self._versions.get(stem)
        if not versions:
            raise KeyError(f"no schema for record {record!r} in {self.folder}")
        number = self._folder_latest.get(stem, max(versions)) if version is None else version
        if number not in versions:
            raise KeyError(f"record {record!r} has no version {number} in {self.folder}")
        return versions[number]


class ConfluentRegistry:
    """A Confluent Schema Registry (``mock://...`` in unit tests) serving the folder's schemas.

    Writers register the folder's versions under their full names; readers fetch unknown ids once.
    Ids are cached both ways. A registry that cannot be reached raises its own error (never
    UNKNOWN_SCHEMA_ID), so that an outage does not send valid records to the dlq.
    """

    def __init__(
        self,
        url: str,
        config: Mapping[str, Any] | None = None,
        folder: Path = SCHEMAS_DIR,
    ) -> None:
        """A client for the URL (``mock://`` gives the in-process mock) and the folder's schemas."""
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.url = url
        self.client = SchemaRegistryClient.new_client({**(config or {}), "url": url})
        self._local = _Local(folder)
        self._ids: dict[tuple[str, str], int] = {}
        self._parsed: dict[int, Any] = {}
        self._versions: dict[tuple[str, int], SchemaVersion] = {}
        self._lock = threading.Lock()

    def _parse(self, schema_id: int, schema: Schema) -> Any:
        """The one parsed schema of an id (shared so that identity means 'same writer')."""
        with self._lock:
            return self._parsed.setdefault(schema_id, parse_schema(schema))

    def register(self, subject: str, schema: Schema | str) -> int:
        """Register (idempotently) and cache the id of a schema under a subject."""
        from confluent_kafka.schema_registry import Schema as RegistrySchema

        loaded = _as_schema(schema)
        text = json.dumps(loaded, separators=(",", ":"))
        key = (subject, text)
        schema_id = self._ids.get(key)
        if schema_id is None:
            schema_id = int(self.client.register_schema(subject, RegistrySchema(text, "AVRO")))
            self._parse(schema_id, loaded)
            self._ids[key] = schema_id
        return schema_id

    def schema_by_id(self, schema_id: int) -> Any:
        """The parsed schema of an id, fetched once from the registry."""
        parsed = self._parsed.get(schema_id)
        if parsed is not None:
            return parsed
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            text = self.client.get_schema(schema_id).schema_str
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise CodecError(
                    DlqReason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is not in {self.url}"
                ) from None
            raise
        try:
            loaded = _as_schema(text or "null")
        except ValueError as exc:
            raise CodecError(DlqReason.SCHEMA_MISMATCH, f"schema id {schema_id}: {exc}") from None
        return self._parse(schema_id, loaded)

    def latest(self, subject: str) -> SchemaVersion:
        """The newest version registered under a subject (a full name; a file stem is mapped)."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        stem = self._local.stem(subject)
        name = subject
        if stem in self._local.schemas:
            name = full_name(self._local.pick(stem, None)[2])
        try:
            registered = self.client.get_latest_version(name)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise KeyError(f"no schema registered under {name!r} in {self.url}") from None
            raise
        if registered.schema_id is None or registered.version is None:
            raise KeyError(f"{name!r} in {self.url}: the registry gave no id or version")
        schema_id, number = int(registered.schema_id), int(registered.version)
        schema = _as_schema(registered.schema.schema_str or "null")
        return SchemaVersion(stem, number, schema_id, schema, self._parse(schema_id, schema))

    def version(self, record: str, version: int | None = None) -> SchemaVersion:
        """Register (once) and return a folder version of a record's schema.

        The first use of a record registers all its folder versions in order, so that on a fresh
        subject the registry's version numbers follow the files' (whichever version asks first).
        """
        stem, number, _ = self._local.pick(record, version)
        entry = self._versions.get((stem, number))
        if entry is None:
            for n, s in sorted(self._local.schemas[stem].items()):
                if (stem, n) not in self._versions:
                    schema_id = self.register(full_name(s), s)
                    self._versions[(stem, n)] = SchemaVersion(
                        stem, n, schema_id, s, self._parsed[schema_id]
                    )
            entry = self._versions[(stem, number)]
        return entry
