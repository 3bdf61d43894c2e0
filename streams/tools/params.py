"""The risk-params topic seen from outside the workers: the set in force and publishing a new one.

The set in force is found as the market agent finds it: every record of the topic, in order,
through ``MarketState.on_params`` (streams/market/state.py), which refuses a record whose JSON is
invalid, whose name or version differs from its JSON's, or whose version is not newer than one of
the same name already applied. A set is published only when its version is newer than the newest
of its name there, so that the workers take it instead of sending it to the dlq as STALE_PARAMS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Message
from pydantic import ValidationError

from engine.params import RiskParams
from infra.settings import Settings
from streams.codec import AvroCodec, codec_from_settings
from streams.codec.errors import CodecError
from streams.kafka_io import Received, make_producer, read_tails
from streams.market.state import MarketState
from streams.records import RiskParamsRecord
from streams.topics.catalog import Topic

NO_LEADER_YET = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE})
"""What a broker answers for a topic created a moment ago."""


@dataclass(frozen=True)
class LiveParams:
    """What the risk-params topic puts in force: the set (the defaults when no record was
    taken), the record that carried it (None for the defaults) and the newest version of each
    set name."""

    params: RiskParams
    record: RiskParamsRecord | None
    versions: dict[str, int]

    def newest(self, name: str) -> int:
        """The newest version of a set name in force or seen (0: none)."""
        state = MarketState(params=self.params, param_versions=dict(self.versions))
        return state.newest_version(name)


def replay(records: list[RiskParamsRecord]) -> LiveParams:
    """The set in force after the records, governed as the market agent governs them (a
    refused record changes nothing)."""
    state = MarketState()
    taken: RiskParamsRecord | None = None
    for record in records:
        try:
            state.on_params(record, "replay")
        except (ValidationError, ValueError):  # invalid, inconsistent or stale (StaleParams)
            continue
        taken = record
    return LiveParams(state.params, taken, dict(state.param_versions))


def read_topic(settings: Settings, topic: str, timeout_s: float = 15.0) -> list[Received]:
    """Every record of a single-partition topic, retried while the broker says it is not ready
    (a topic just created has no leader for a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read_tails(settings, topic, [0])
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            waiting = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in NO_LEADER_YET
            )
            if not waiting or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_records(settings: Settings, codec: AvroCodec) -> list[RiskParamsRecord]:
    """Every record of the risk-params topic to its end, decoded (undecodable ones skipped, as
    the market agent skips them)."""
    found = []
    for message in read_topic(settings, settings.topic(Topic.RISK_PARAMS)):
        try:
            record = codec.decode(Topic.RISK_PARAMS, message.value)
        except CodecError:
            continue
        if isinstance(record, RiskParamsRecord):
            found.append(record)
    return found


def read_live(settings: Settings) -> LiveParams:
    """The set in force on the configured broker's risk-params topic."""
    return replay(read_records(settings, codec_from_settings(settings)))


def stale_reason(params: RiskParams, live: LiveParams) -> str | None:
    """Why the workers would refuse the set as stale (None when its version is newer)."""
    newest = live.newest(params.name)
    if params.version > newest:
        return None
    return (
        f"{params.name}@{params.version} is not newer than {params.name}@{newest}, already "
        f"published; give the file a version above {newest}"
    )


def publish(settings: Settings, params: RiskParams, timeout_s: float = 30.0) -> RiskParamsRecord:
    """Produce the set on the risk-params topic, keyed by its name, and wait for the broker's
    acknowledgement (KafkaException when it does not come or reports an error)."""
    codec = codec_from_settings(settings)
    record = RiskParamsRecord(
        name=params.name,
        version=params.version,
        params_json=params.to_json(),
        ts=datetime.now(tz=UTC),
    )
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            errors.append(error)

    producer = make_producer(settings)
    producer.produce(
        settings.topic(Topic.RISK_PARAMS),
        key=params.name.encode(),
        value=codec.encode(Topic.RISK_PARAMS, record),
        on_delivery=delivered,
    )
    if producer.flush(timeout_s):
        raise KafkaException(f"no acknowledgement from the broker within {timeout_s} s")
    if errors:
        raise KafkaException(errors[0])
    return record
