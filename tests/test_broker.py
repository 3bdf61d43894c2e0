"""The embedded broker manager, topic creation and the `spma broker` / `spma topics` commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from infra.broker import BrokerError, EmbeddedBroker, find_tansu, free_port, wait_for_metadata
from infra.broker_engine import Engine, resolve
from infra.kafka_broker import POM, java_major, kafka_version, missing_tools, random_cluster_id
from infra.settings import Settings
from streams.topics.admin import create_topics, describe_topics
from streams.topics.catalog import TOPICS

SPMA = [sys.executable, "-m", "streams.cli.main"]


def test_tansu_binary_is_found() -> None:
    path = find_tansu()
    assert path.name == "tansu" and os.access(path, os.X_OK)


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPMA_TANSU_BIN", str(tmp_path / "nope"))
    with pytest.raises(BrokerError, match="not an executable"):
        EmbeddedBroker().start()


def test_broker_that_dies_at_start_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'address already in use' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SPMA_TANSU_BIN", str(fake))
    with pytest.raises(BrokerError, match=r"exited with code 3.*address already in use"):
        EmbeddedBroker().start(timeout_s=10)


def test_unreachable_broker_times_out_with_a_message() -> None:
    with pytest.raises(BrokerError, match="did not answer"):
        wait_for_metadata(f"127.0.0.1:{free_port()}", timeout_s=1.0)


@pytest.mark.broker
def test_topics_created_with_partitions_and_policies(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=6)
    first = create_topics(settings)
    assert {r.outcome for r in first} == {"created"}
    again = create_topics(settings)
    assert {r.outcome for r in again} == {"exists"}, "creation must be idempotent"
    for result, spec in zip(again, TOPICS, strict=True):
        assert result.partitions == (1 if spec.single_partition else 6), result
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resources = [ConfigResource("topic", settings.topic(s.name)) for s in TOPICS]
    for spec, future in zip(TOPICS, admin.describe_configs(resources).values(), strict=True):
        assert future.result(10)["cleanup.policy"].value == str(spec.cleanup), spec.name


@pytest.mark.broker
def test_topics_create_command(kafka_bootstrap: str, unique_prefix: str) -> None:
    env = {
        **os.environ,
        "SPMA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SPMA_TOPIC_PREFIX": unique_prefix,
    }
    out = subprocess.run(
        [*SPMA, "topics", "create", "--partitions", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"{unique_prefix}fills" in out and "created" in out
    listed = subprocess.run(
        [*SPMA, "topics", "list"],
        env={**env, "SPMA_PARTITIONS": "3"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "missing" not in listed and "exists-with" not in listed
    results = describe_topics(
        Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=3)
    )
    assert all(r.partitions in (1, 3) for r in results)


def test_topics_create_against_nothing_fails_cleanly() -> None:
    env = {**os.environ, "SPMA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    done = subprocess.run(
        [*SPMA, "topics", "create", "--timeout", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot create topics" in done.stderr and "Traceback" not in done.stderr


ENGINES = [
    pytest.param("kafka", "Apache Kafka", id="kafka"),
    pytest.param("tansu", "Tansu", id="tansu"),
]


@pytest.mark.parametrize(("engine", "name"), ENGINES)
def test_broker_command_runs_in_the_foreground_and_stops(engine: str, name: str) -> None:
    """`spma broker --engine E` starts that broker, says which, creates the topics, and stops
    on SIGTERM (its JVM or Tansu process with it)."""
    if engine == "kafka" and missing_tools():
        pytest.skip(str(missing_tools()))
    port = free_port()
    process = subprocess.Popen(
        [*SPMA, "broker", "--engine", engine, "--port", str(port), "--partitions", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_metadata(f"127.0.0.1:{port}", timeout_s=90)
        deadline = time.monotonic() + 30
        names: set[str] = set()
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        while time.monotonic() < deadline and "spma.fills" not in names:
            names = set(admin.list_topics(timeout=5).topics)
            time.sleep(0.3)
        assert "spma.fills" in names
        assert len(admin.list_topics(timeout=5).topics["spma.fills"].partitions) == 2
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert f"{name}" in out and "listening on" in out, err
    with pytest.raises(BrokerError):
        wait_for_metadata(f"127.0.0.1:{port}", timeout_s=2.0)


def _without_java(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds only the virtualenv's tools: no java and no mvn."""
    del tmp_path
    return {**os.environ, "PATH": str(Path(sys.executable).parent)}


def test_kafka_without_java_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SPMA, "broker", "--engine", "kafka", "--port", "0"],
        env=_without_java(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Java 17" in done.stderr and "Traceback" not in done.stderr


def test_auto_without_java_is_tansu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", _without_java(tmp_path)["PATH"])
    assert missing_tools() is not None
    assert resolve(Engine.AUTO) is Engine.TANSU
    with pytest.raises(BrokerError, match="Java 17"):
        resolve(Engine.KAFKA)


def test_auto_with_java_and_maven_is_kafka() -> None:
    if missing_tools():
        pytest.skip(str(missing_tools()))
    assert resolve("auto") is Engine.KAFKA


def test_java_version_is_read_from_java_itself(tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    assert java_major(str(fake)) == 11
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_202\"' >&2\n")
    assert java_major(str(fake)) == 8


def test_the_pom_pins_one_kafka_4_release() -> None:
    version = kafka_version()
    assert version.startswith("4."), version
    assert "kafka_2.13" in POM.read_text()


@pytest.mark.broker
def test_session_broker_is_the_one_the_header_names(kafka_bootstrap: str, broker_kind: str) -> None:
    """On a machine with Java 17 and Maven (and no Docker engine, no external broker), the
    suite runs on Apache Kafka unless the Tansu lane asked for Tansu."""
    forced = os.environ.get("SPMA_TEST_BROKER")
    shared = os.environ.get("PYTEST_SPMA_SHARED_BROKER")  # an xdist controller's broker
    if shared:
        assert broker_kind == shared.partition("|")[0]
    elif os.environ.get("SPMA_KAFKA_BOOTSTRAP"):
        assert broker_kind == "external"
    elif forced:
        assert broker_kind == forced
    elif missing_tools() is None and broker_kind != "docker":
        assert broker_kind == "kafka"
    assert wait_for_metadata(kafka_bootstrap, timeout_s=10) is None


def test_cluster_ids_never_look_like_an_option() -> None:
    """The storage tool takes `--cluster-id -X...` for an option: ids must not start with '-'
    (a session broker failed to format one time in 64 before this)."""
    ids = [random_cluster_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)
