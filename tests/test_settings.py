"""Settings: defaults, SPMA_ variables, the TOML file, and security passed to both clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.auth import SASLCredentials
from pydantic import ValidationError

from infra.config_check import EXTRA_VARIABLES, ConfigError, check_config_file, unknown_variables
from infra.settings import Settings
from streams.agents.app import new_app
from streams.agents.worker import Worker
from streams.codec import codec_from_settings


def test_defaults_name_the_spec_topics() -> None:
    settings = Settings()
    assert settings.topic("fills") == "spma.fills"
    assert settings.schema_registry_url is None
    assert (settings.schemas_dir / "__init__.py").exists()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPMA_BOOTSTRAP_SERVERS", "10.0.0.1:9092, 10.0.0.2:9092")
    monkeypatch.setenv("SPMA_PARTITIONS", "16")
    monkeypatch.setenv("SPMA_TOPIC_PREFIX", "prod.")
    settings = Settings()
    assert settings.bootstrap_servers == "10.0.0.1:9092,10.0.0.2:9092"
    assert settings.partitions == 16
    assert settings.topic("dlq") == "prod.dlq"
    assert settings.faust_broker_url() == "kafka://10.0.0.1:9092;kafka://10.0.0.2:9092"


def test_toml_file_below_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "spma.toml"
    config.write_text('partitions = 12\ntopic_prefix = "x."\nweb_port = 7000\n')
    monkeypatch.setenv("SPMA_CONFIG", str(config))
    monkeypatch.setenv("SPMA_WEB_PORT", "7001")
    settings = Settings()
    assert (settings.partitions, settings.topic_prefix, settings.web_port) == (12, "x.", 7001)


def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPMA_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="partitions"):
        Settings()
    monkeypatch.delenv("SPMA_PARTITIONS")
    with pytest.raises(ValidationError, match="host:port"):
        Settings(bootstrap_servers="nohostport")
    with pytest.raises(ValidationError):
        Settings(security_protocol="CARRIER_PIGEON")


def test_sasl_ssl_reaches_confluent_kafka_and_faust(tmp_path: Path) -> None:
    settings = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="spma",
        sasl_password="s3cret",
    )
    conf = settings.kafka_client_config()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "spma" and conf["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)
    credentials = settings.faust_credentials()
    assert isinstance(credentials, SASLCredentials)
    assert credentials.username == "spma"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is not None


def test_plaintext_has_no_credentials() -> None:
    assert Settings().faust_credentials() is None
    assert "sasl.username" not in Settings().kafka_client_config()


def test_unknown_variables_are_named_with_the_closest_setting() -> None:
    environ = {
        "SPMA_BOOTSTRAP_SERVER": "x:1",
        "spma_partition": "3",
        "SPMA_PARTITIONS": "3",
        "SPMA_TEST_BROKER": "kafka",  # read by the tests, not a setting
        "SPMA_ZZZ": "1",
        "PATH": "/bin",
    }
    assert unknown_variables(environ) == [
        "SPMA_BOOTSTRAP_SERVER is not a setting; did you mean SPMA_BOOTSTRAP_SERVERS?",
        "SPMA_ZZZ is not a setting",
        "spma_partition is not a setting; did you mean SPMA_PARTITIONS?",
    ]


def test_every_extra_variable_is_read_somewhere() -> None:
    root = Path(__file__).resolve().parents[1]
    sources = "".join(
        p.read_text() for d in ("infra", "streams", "tests") for p in (root / d).rglob("*.py")
    )
    for name in EXTRA_VARIABLES:
        assert sources.count(name) > 1, f"{name} is listed but read nowhere"


def test_config_file_keys(tmp_path: Path) -> None:
    config = tmp_path / "spma.toml"
    config.write_text('Partitions = 3\ntopic_prefix = "x."\n')
    check_config_file(config, named=True)  # keys are matched case-insensitively
    config.write_text("web_prot = 7000\n")
    with pytest.raises(ConfigError, match="unknown key 'web_prot'; did you mean 'web_port'"):
        check_config_file(config, named=True)
    check_config_file(tmp_path / "absent.toml", named=False)
    with pytest.raises(ConfigError, match="does not exist"):
        check_config_file(tmp_path / "absent.toml", named=True)


def test_changelogs_are_under_the_prefix() -> None:
    settings = Settings(topic_prefix="prod.", app_id="risk")
    assert settings.changelog_topic("portfolios") == "prod.risk-portfolios-changelog"
    legacy = Settings(topic_prefix="prod.", app_id="risk", legacy_changelog_names=True)
    assert legacy.changelog_topic("portfolios") == "risk-portfolios-changelog"


def test_the_worker_binds_and_names_its_changelogs_as_the_settings_say() -> None:
    settings = Settings(topic_prefix="prod.", web_host="127.0.0.2", min_insync_replicas=2)
    app = new_app(settings)
    assert app.conf.web_bind == "127.0.0.2"
    worker = Worker(settings, app, codec_from_settings(settings))
    assert worker.table.changelog_topic.get_topic_name() == "prod.spma-portfolios-changelog"
    assert worker.table.changelog_topic.config == {"min.insync.replicas": "2"}
    assert all(name.startswith("prod.") for name in app.tables.changelog_topics)
