"""docker-compose.yml is valid (Debian's docker-compose needs no engine) and matches settings: the
workers get their token and a readiness healthcheck, every image is pinned, Prometheus loads the
alert rules and Grafana its datasource and dashboard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from infra.kafka_broker import kafka_version
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "compose-test-token"


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` in the repository with this environment."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's package)")
    return subprocess.run(
        [tool, "config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The resolved compose file, as `docker-compose config` prints it (the workers' token set,
    as the README asks)."""
    done = compose_config({**os.environ, "SPMA_WEB_TOKEN": TOKEN})
    assert done.returncode == 0, f"docker-compose config failed: {done.stderr}"
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: the container path -> the file or folder in the repository."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume["source"], volume["target"]
        else:
            source, target = volume.split(":")[:2]
        found[target] = Path(source)
    return found


def test_services_are_there(compose: dict[str, Any]) -> None:
    wanted = {"kafka", "schema-registry", "worker", "prometheus", "topics", "grafana"}
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


def test_the_workers_token_is_required() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SPMA_WEB_TOKEN"}
    done = compose_config(env)
    assert done.returncode != 0, "a worker beyond loopback refuses to start without a token"
    assert "set SPMA_WEB_TOKEN" in done.stderr, done.stderr


def test_the_workers_get_the_token(compose: dict[str, Any]) -> None:
    assert compose["services"]["worker"]["environment"]["SPMA_WEB_TOKEN"] == TOKEN


def test_every_image_is_pinned_to_a_release(compose: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in compose["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image} is not pinned"
        if repository == "spma":  # built here: tagged with the project's version
            assert tag == version, f"{name}: {image}, but pyproject.toml says {version}"


def test_the_workers_healthcheck_asks_for_readiness(compose: dict[str, Any]) -> None:
    check = compose["services"]["worker"]["healthcheck"]
    assert check["test"] == ["CMD", "python", "-m", "infra.probe", "/ready"]
    assert not check.get("disable")


def test_prometheus_loads_the_alert_rules(compose: dict[str, Any]) -> None:
    files = mounts(compose["services"]["prometheus"])
    config_path = PurePosixPath("/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(files[str(config_path)].read_text())
    for rule_file in config["rule_files"]:
        target = str(config_path.parent / rule_file)  # relative to the configuration file
        assert target in files, f"{rule_file} is not mounted beside prometheus.yml"
        assert files[target] == ROOT / "infra" / "deploy" / rule_file
        assert "groups" in yaml.safe_load(files[target].read_text())


def test_grafana_has_the_prometheus_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    files = mounts(grafana)
    provisioning = files["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    port = compose["services"]["prometheus"]["ports"][0]
    target = port["target"] if isinstance(port, dict) else str(port).split(":")[-1]
    assert source["url"] == f"http://prometheus:{target}"
    providers = yaml.safe_load((provisioning / "dashboards" / "spma.yml").read_text())
    (provider,) = providers["providers"]
    folder = files[provider["options"]["path"]]
    dashboards = sorted(folder.glob("*.json"))
    assert dashboards, f"no dashboard in {folder}"
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert folder / PurePosixPath(home).name in dashboards
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
