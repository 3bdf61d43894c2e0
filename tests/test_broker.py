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
from infra.settings import Settings
from infra.topics import TOPICS, create_topics, describe_topics

SPMA = [sys.executable, "-m", "infra.cli"]


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


def test_broker_command_runs_in_the_foreground_and_stops() -> None:
    port = free_port()
    process = subprocess.Popen(
        [*SPMA, "broker", "--port", str(port), "--partitions", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_metadata(f"127.0.0.1:{port}", timeout_s=30)
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
        out, err = process.communicate(timeout=30)
    assert "listening on" in out, err
