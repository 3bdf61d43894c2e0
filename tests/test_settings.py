"""Settings: defaults, SPMA_ variables, the TOML file, and security passed to both clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.auth import SASLCredentials
from pydantic import ValidationError

from infra.settings import Settings


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
