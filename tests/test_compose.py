"""docker-compose.yml is valid (Debian's docker-compose needs no engine) and matches settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.kafka_broker import kafka_version
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The resolved compose file, as `docker-compose config` prints it."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's package)")
    done = subprocess.run(
        [tool, "config"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"docker-compose config failed: {done.stderr}"
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def test_services_are_there(compose: dict[str, Any]) -> None:
    wanted = {"kafka", "schema-registry", "worker", "prometheus", "topics"}
    assert wanted <= set(compose["services"])


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from `spma topics`"


def test_kafka_image_is_the_release_the_project_runs(compose: dict[str, Any]) -> None:
    image = compose["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{kafka_version()}", "keep it in step with infra/kafka/pom.xml"


def test_worker_is_scalable(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "a fixed name forbids --scale"
    assert "ports" not in worker, "a published host port forbids --scale"
    assert worker["command"] == ["worker"]


def test_worker_settings_agree_with_the_project(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("worker", "topics"):
        env = services[name]["environment"]
        spma = {k.removeprefix("SPMA_").lower(): v for k, v in env.items() if k.startswith("SPMA_")}
        settings = Settings(**spma)  # every variable is a real setting with a valid value
        assert settings.partitions == Settings().partitions
        assert settings.topic_prefix == Settings().topic_prefix
        assert settings.bootstrap_servers.split(":")[0] == "kafka"
        assert settings.schema_registry_url == "http://schema-registry:8081"
        assert settings.web_host == "0.0.0.0"
    kafka_env = services["kafka"]["environment"]
    assert int(kafka_env["KAFKA_NUM_PARTITIONS"]) == Settings().partitions


def test_prometheus_scrapes_the_workers_metrics_port(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["prometheus"]["volumes"]
    mount = volumes[0]
    source = Path(mount["source"] if isinstance(mount, dict) else mount.split(":")[0])
    config = yaml.safe_load(source.read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    target = job["dns_sd_configs"][0]
    assert target["names"] == ["worker"] and target["port"] == Settings().web_port
