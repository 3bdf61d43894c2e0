"""Encode models to framed Avro and decode framed Avro to validated models, per topic.

The writer schema travels as an id; decoding resolves it against the topic's reader schema, so a
newer writer (a field added with a default) and an older reader, or the other way round, agree.
Everything schema-related (parsed schemas, headers, readers per writer name) is prepared once per
topic and per id: the per-record work is fastavro's compiled reader or writer plus validation.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from pydantic import ValidationError

from streams.codec.errors import CodecError
from streams.codec.registry import ConfluentRegistry, FolderRegistry, SchemaRegistry, full_name
from streams.codec.wire import HEADER_SIZE, header, read_header
from streams.records import DlqReason, Record
from streams.topics.catalog import CATALOG, TopicSpec

if TYPE_CHECKING:
    from infra.settings import Settings

_UNKNOWN_SYMBOL = re.compile(r"^(?P<symbol>.*) not found in reader symbol list (?P<enum>[^\s,]+)")


def _short(name: str) -> str:
    """The unqualified part of a full Avro name (what resolution compares)."""
    return name.rsplit(".", 1)[-1]


def _enum_fields(schema: Any, path: str, namespace: str, found: dict[str, list[str]]) -> None:
    """Map every enum's full name to the field paths that use it (for readable errors)."""
    if isinstance(schema, list):
        for branch in schema:
            _enum_fields(branch, path, namespace, found)
    elif isinstance(schema, str):
        name = schema if "." in schema else f"{namespace}.{schema}"
        if name in found and path not in found[name]:
            found[name].append(path)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "enum":
            found.setdefault(full_name({"namespace": namespace, **schema}), []).append(path)
        elif kind == "record":
            inner = full_name({"namespace": namespace, **schema}).rpartition(".")[0]
            for f in schema["fields"]:
                _enum_fields(f["type"], f"{path}.{f['name']}".lstrip("."), inner, found)
        elif kind == "array":
            _enum_fields(schema["items"], f"{path}[]", namespace, found)
        elif kind == "map":
            _enum_fields(schema["values"], f"{path}{{}}", namespace, found)
        elif isinstance(kind, dict | list):
            _enum_fields(kind, path, namespace, found)


@dataclass(frozen=True)
class _Reader:
    """How to read one record type of a topic: the reader schema and the model."""

    record: str
    model: type[Record]
    parsed: Any
    enums: dict[str, list[str]]


@dataclass(frozen=True)
class _Topic:
    """A topic's prepared codec state."""

    name: str
    entry: TopicSpec
    main: _Reader
    readers: dict[str, _Reader]  # by the record's unqualified name
    writers: dict[type[Record], tuple[bytes, Any]] = field(default_factory=dict)


class AvroCodec:
    """Avro codec for SPMA's topics over a registry; versions pinned per record stem if asked."""

    def __init__(
        self,
        registry: SchemaRegistry,
        catalog: Mapping[str, TopicSpec] = CATALOG,
        versions: Mapping[str, int] | None = None,
    ) -> None:
        """A codec over a registry and a topic catalog; ``versions`` pins writer/reader versions."""
        self.registry = registry
        self.catalog = catalog
        self.versions = dict(versions or {})
        self._topics: dict[str, _Topic] = {}
        self._writers: dict[int, tuple[Any, str]] = {}

    def _topic(self, topic: str) -> _Topic:
        """The prepared state of a topic (built on first use)."""
        entry = self.catalog.get(topic)
        if entry is None:
            raise CodecError(DlqReason.UNKNOWN_TOPIC, f"no record is catalogued for {topic!r}")
        readers: dict[str, _Reader] = {}
        writers: dict[type[Record], tuple[bytes, Any]] = {}
        for kind in entry.types():
            version = self.registry.version(kind.record, self.versions.get(kind.record))
            enums: dict[str, list[str]] = {}
            _enum_fields(version.schema, "", "", enums)
            reader = _Reader(kind.record, kind.model, version.parsed, enums)
            readers[_short(version.full_name)] = reader
            writers[kind.model] = (header(version.schema_id), version.parsed)
        main = next(iter(readers.values()))
        prepared = _Topic(topic, entry, main, readers, writers)
        self._topics[topic] = prepared
        return prepared

    def schema_id(self, topic: str, model: type[Record] | None = None) -> int:
        """The writer schema id this codec frames a topic's records with."""
        prepared = self._topics.get(topic) or self._topic(topic)
        head, _ = prepared.writers[model or prepared.entry.model]
        return int.from_bytes(head[1:HEADER_SIZE], "big")

    def encode(self, topic: str, value: Record | Mapping[str, Any]) -> bytes:
        """A model (or a mapping, validated as the topic's main model) as framed Avro."""
        prepared = self._topics.get(topic) or self._topic(topic)
        if isinstance(value, Mapping):
            value = self._validate(prepared.main, dict(value))
        writer = prepared.writers.get(type(value))
        if writer is None:
            names = ", ".join(m.__name__ for m in prepared.writers)
            raise CodecError(
                DlqReason.SCHEMA_MISMATCH,
                f"{topic} carries {names}, not {type(value).__name__}",
            )
        head, parsed = writer
        buffer = io.BytesIO()
        buffer.write(head)
        try:
            schemaless_writer(buffer, parsed, value.to_avro())
        except Exception as exc:
            detail = f"{topic}: cannot encode {type(value).__name__}: {type(exc).__name__}: {exc}"
            raise CodecError(DlqReason.INVALID_VALUE, detail) from None
        return buffer.getvalue()

    def decode(self, topic: str, data: bytes | bytearray | memoryview | None) -> Record:
        """Framed Avro to the topic's model; CodecError with the reason when it cannot."""
        prepared = self._topics.get(topic) or self._topic(topic)
        schema_id = read_header(data)
        assert data is not None
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._writer(schema_id)
        parsed, name = writer
        reader = prepared.readers.get(name)
        if reader is None:
            raise CodecError(
                DlqReason.SCHEMA_MISMATCH,
                f"{topic}: schema id {schema_id} writes {name}, the topic carries "
                f"{', '.join(prepared.readers)}",
            )
        raw = self._read(topic, data, parsed, reader)
        return self._validate(reader, raw)

    def _writer(self, schema_id: int) -> tuple[Any, str]:
        """The parsed writer schema of an id and its record's unqualified name (cached)."""
        parsed = self.registry.schema_by_id(schema_id)
        if not isinstance(parsed, dict) or parsed.get("type") != "record":
            raise CodecError(
                DlqReason.SCHEMA_MISMATCH, f"schema id {schema_id} is not an Avro record"
            )
        writer = (parsed, _short(str(parsed["name"])))
        self._writers[schema_id] = writer
        return writer

    @staticmethod
    def _read(
        topic: str, data: bytes | bytearray | memoryview, writer: Any, reader: _Reader
    ) -> dict[str, Any]:
        """The Avro body as a mapping, resolved to the reader schema."""
        size = len(data)
        stream = io.BytesIO(data)
        stream.seek(HEADER_SIZE)
        try:
            raw = schemaless_reader(
                stream, writer, None if writer is reader.parsed else reader.parsed
            )
        except SchemaResolutionError as exc:
            raise AvroCodec._resolution_error(topic, reader, exc) from None
        except Exception as exc:
            if stream.tell() >= size:
                detail = f"{topic}: the Avro body ends early ({size} bytes in all)"
                raise CodecError(DlqReason.TRUNCATED, detail) from None
            detail = f"{topic}: {type(exc).__name__}: {exc} (at byte {stream.tell()} of {size})"
            raise CodecError(DlqReason.MALFORMED_BODY, detail) from None
        if stream.tell() != size:
            raise CodecError(
                DlqReason.MALFORMED_BODY,
                f"{topic}: {size - stream.tell()} bytes left after the {reader.record} record",
            )
        if not isinstance(raw, dict):
            raise CodecError(DlqReason.MALFORMED_BODY, f"{topic}: not a record")
        return raw

    @staticmethod
    def _resolution_error(topic: str, reader: _Reader, exc: SchemaResolutionError) -> CodecError:
        """An unknown enum symbol is an invalid value of its field; the rest a schema mismatch."""
        match = _UNKNOWN_SYMBOL.match(str(exc))
        if match is None:
            return CodecError(DlqReason.SCHEMA_MISMATCH, f"{topic}: {exc}")
        enum = match["enum"]
        paths = reader.enums.get(enum) or [
            p for name, ps in reader.enums.items() if _short(name) == _short(enum) for p in ps
        ]
        where = "|".join(paths) or enum
        return CodecError(
            DlqReason.INVALID_VALUE,
            f"{reader.record}.{where}: unknown symbol {match['symbol']!r} of {_short(enum)}",
        )

    @staticmethod
    def _validate(reader: _Reader, raw: dict[str, Any]) -> Record:
        """The mapping as the reader's model; INVALID_VALUE names the field."""
        try:
            return reader.model.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            first = errors[0]
            where = ".".join(str(p) for p in first["loc"])
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            detail = f"{reader.record}{'.' + where if where else ''}: {first['msg']}{more}"
            raise CodecError(DlqReason.INVALID_VALUE, detail) from None


def codec_from_settings(settings: Settings) -> AvroCodec:
    """The codec the settings ask for: a Schema Registry URL, else the schemas folder's ids;
    the schema versions pinned by ``schema_versions``, else the newest."""
    registry: SchemaRegistry
    if settings.schema_registry_url:
        registry = ConfluentRegistry(settings.schema_registry_url, folder=settings.schemas_dir)
    else:
        registry = FolderRegistry(settings.schemas_dir)
    return AvroCodec(registry, versions=settings.schema_versions)
