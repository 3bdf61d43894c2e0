"""The operator's commands and their configuration checks: one line and exit 2 for each bad
configuration, `--version`, `spma params publish|show`, `spma topics describe` and `topics
create` on topics with other partition counts. Commands run in-process (typer's CliRunner)."""

from __future__ import annotations

import json
import socket
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner, Result

from infra.settings import Settings
from streams.cli.commands.worker import check_changelogs, prepare
from streams.cli.main import app
from streams.kafka_io import read_tails
from streams.tools.params import read_live

ROOT = Path(__file__).resolve().parents[1]


def spma(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `spma ARGS` in this process with more environment variables."""
    return CliRunner().invoke(app, list(args), env=env)


def one_error(result: Result) -> str:
    """The single error line of a failed command (and no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("spma: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other socket listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_version_is_the_package_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    result = spma("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{project['name']} {project['version']}"


def test_bad_loglevel() -> None:
    result = spma("worker", "--loglevel", "loud")
    assert result.exit_code == 2
    assert "--loglevel 'loud'" in one_error(result)


def test_web_port_in_use(busy_port: int) -> None:
    env = {"SPMA_WEB_HOST": "127.0.0.1", "SPMA_WEB_PORT": str(busy_port)}
    result = spma("worker", env=env)
    assert result.exit_code == 2
    assert f"web port 127.0.0.1:{busy_port}" in one_error(result)


def test_unknown_variable_is_a_warning_with_the_closest_setting(
    busy_port: int, tmp_path: Path
) -> None:
    config = tmp_path / "spma.toml"
    config.write_text("partitions = 4\n")
    env = {
        "SPMA_BOOTSTRAP_SERVER": "10.0.0.1:9092",
        "SPMA_CONFIG": str(config),  # not a setting, but a known variable: no warning
        "SPMA_WEB_HOST": "127.0.0.1",
        "SPMA_WEB_PORT": str(busy_port),
    }
    result = spma("worker", env=env)
    warnings = [w for w in result.stderr.splitlines() if w.startswith("spma: warning:")]
    assert warnings == [
        "spma: warning: SPMA_BOOTSTRAP_SERVER is not a setting; "
        "did you mean SPMA_BOOTSTRAP_SERVERS?"
    ]
    assert result.exit_code == 2
    assert "web port" in one_error(result)  # what stops it comes after the warning


def test_unknown_toml_key(tmp_path: Path) -> None:
    config = tmp_path / "spma.toml"
    config.write_text('partitions = 4\nbootstrap_server = "10.0.0.1:9092"\n')
    result = spma("worker", env={"SPMA_CONFIG": str(config)})
    assert result.exit_code == 2
    assert one_error(result) == (
        f"spma: error: config file {config}: unknown key 'bootstrap_server'; "
        "did you mean 'bootstrap_servers'?"
    )


def test_malformed_toml(tmp_path: Path) -> None:
    config = tmp_path / "spma.toml"
    config.write_text("partitions = 4\nweb_port = = 7000\n")
    result = spma("worker", env={"SPMA_CONFIG": str(config)})
    assert result.exit_code == 2
    line = one_error(result)
    assert str(config) in line and "line 2, column" in line


def test_named_config_file_missing(tmp_path: Path) -> None:
    result = spma("worker", env={"SPMA_CONFIG": str(tmp_path / "nope.toml")})
    assert result.exit_code == 2
    assert "does not exist" in one_error(result)


def test_bad_params_file_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "params.json"
    bad.write_text(json.dumps({"name": "ops", "version": 0}))
    result = spma("params", "publish", str(bad))
    assert result.exit_code == 2
    line = one_error(result)
    assert str(bad) in line and "version" in line


def _broker_env(kafka_bootstrap: str, prefix: str, partitions: int = 2) -> dict[str, str]:
    """The variables that point the commands at the test's own topics."""
    return {
        "SPMA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SPMA_TOPIC_PREFIX": prefix,
        "SPMA_PARTITIONS": str(partitions),
    }


@pytest.mark.broker
def test_params_publish_and_show(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _broker_env(kafka_bootstrap, unique_prefix)
    assert spma("topics", "create", env=env).exit_code == 0
    shown = spma("params", "show", env=env)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith("default version 1 (the defaults")
    file = tmp_path / "ops.json"
    file.write_text(json.dumps({"name": "ops", "version": 2}))
    published = spma("params", "publish", str(file), env=env)
    assert published.exit_code == 0, published.stderr
    shown = spma("params", "show", env=env)
    assert shown.stdout.startswith("ops version 2 (published ")
    whole = json.loads(spma("params", "show", "--json", env=env).stdout)
    assert (whole["name"], whole["version"]) == ("ops", 2)
    again = spma("params", "publish", str(file), env=env)
    assert again.exit_code == 2
    assert "not newer than ops@2" in one_error(again)
    # a worker publishes its settings' file at start when it is newer than the live set
    file.write_text(json.dumps({"name": "ops", "version": 3}))
    settings = Settings(**{"params_file": file, **_settings_of(env)})  # type: ignore[arg-type]
    prepare(settings, create=False)
    assert read_live(settings).params.version == 3


def _settings_of(env: dict[str, str]) -> dict[str, str]:
    """Settings keyword arguments from SPMA_ variables."""
    return {k.removeprefix("SPMA_").lower(): v for k, v in env.items()}


@pytest.mark.broker
def test_topics_describe_and_create_with_other_partitions(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    env = _broker_env(kafka_bootstrap, unique_prefix)
    assert spma("topics", "create", env=env).exit_code == 0
    described = spma("topics", "describe", env=env)
    assert described.exit_code == 0, described.stdout
    lines = described.stdout.splitlines()
    assert f"{unique_prefix}fills: partitions 2, replication 1, cleanup.policy=delete" in lines[0]
    assert lines[0].endswith(": matches")
    assert any(f"{unique_prefix}risk-params: partitions 1" in line for line in lines)
    more = spma("topics", "create", "--partitions", "3", env=env)
    assert more.exit_code == 2
    line = one_error(more)
    assert f"{unique_prefix}fills (2)" in line and "SPMA_PARTITIONS" in line
    off = spma("topics", "describe", env={**env, "SPMA_PARTITIONS": "3"})
    assert off.exit_code == 1
    assert "DIFFERS (partitions: have 2, want 3)" in off.stdout.splitlines()[0]


@pytest.mark.broker
def test_changelogs_under_the_old_names_stop_the_worker_until_copied(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    env = {**_broker_env(kafka_bootstrap, unique_prefix), "SPMA_APP_ID": unique_prefix + "app"}
    settings = Settings(**_settings_of(env))  # type: ignore[arg-type]
    old = settings.model_copy(update={"legacy_changelog_names": True})
    source, target = old.changelog_topic("portfolios"), settings.changelog_topic("portfolios")
    admin = AdminClient(settings.kafka_client_config())
    for future in admin.create_topics([NewTopic(source, 2, 1)]).values():
        future.result(30)
    while source not in admin.list_topics(timeout=10).topics:  # metadata catches up
        time.sleep(0.1)
    producer = Producer(settings.kafka_client_config())
    written = [(0, b"a", b"1"), (1, b"b", b"2"), (0, b"a", None)]
    for partition, key, value in written:
        producer.produce(source, value=value, key=key, partition=partition)
    assert producer.flush(30) == 0
    with pytest.raises(typer.Exit) as stopped:
        check_changelogs(settings)
    assert stopped.value.exit_code == 2
    check_changelogs(old)  # with the legacy names it starts

    copied = spma("topics", "migrate-changelogs", env=env)
    assert copied.exit_code == 0, copied.stderr
    assert f"{source} -> {target}: 3 records" in copied.stdout
    got = read_tails(settings, target, [0, 1])
    in_order = sorted(got, key=lambda m: (m.partition, m.offset))
    assert [(m.partition, m.key, m.value) for m in in_order] == [written[0], written[2], written[1]]
    check_changelogs(settings)  # the new names are there: it starts
    again = spma("topics", "migrate-changelogs", env=env)
    assert again.exit_code == 2 and "already holds records" in one_error(again)
