"""The Grafana dashboard and the Prometheus alert rules (infra/deploy) ask for metrics a worker
has: every spma_, process_ and python_ metric their queries name is on a live worker's /metrics
(its # TYPE lines, there before any sample); the dashboard has the panels the README lists; the
rules carry what an operator needs; promtool (Debian's prometheus package) accepts the rules, the
configuration and the dashboard's queries, and the rules' unit tests pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.streams.worker_harness import ROOT, running

DEPLOY = ROOT / "infra" / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "spma.json"
RULES = DEPLOY / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus.yml"
PANELS = {
    "Inputs a second",
    "Outputs a second",
    "Consumer lag",
    "Input age",
    "Processing p99",
    "Accounts by state",
    "BANKRUPT accounts",
    "Insurance fund",
    "Insurance fund balance",
    "DLQ by reason",
    "Rebalances",
}
"""Panels the issue asks for (the dashboard has a few more)."""
ALERTS = {
    "SpmaWorkerDown",
    "SpmaNoWorkerUp",
    "SpmaConsumerLagGrowing",
    "SpmaInputBehind",
    "SpmaDlqRecords",
    "SpmaMarkStale",
    "SpmaAccountsBankrupt",
    "SpmaInsuranceFundLow",
}
"""Alerts the issue asks for (there are a few more)."""
METRIC = re.compile(r"\b((?:spma|process|python)_[a-zA-Z0-9_]+)\b")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboard_queries() -> dict[str, list[str]]:
    """The dashboard's PromQL queries by panel title."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in panels}


def rules() -> list[dict[str, Any]]:
    """Every rule of the alert rule file."""
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every query the dashboard and the rules make."""
    for title, exprs in dashboard_queries().items():
        yield from ((f"panel {title!r}", e) for e in exprs)
    yield from ((f"alert {r['alert']}", r["expr"]) for r in rules())


def metric_names(expr: str) -> set[str]:
    """The spma_, process_ and python_ metric names a PromQL expression names (label values and
    strings are not names: they are quoted)."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(METRIC.findall(unquoted))


def typed_names(exposition: str) -> dict[str, str]:
    """Metric name -> type from an exposition's # TYPE lines."""
    found = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            found[name] = kind
    return found


def exposed(name: str, types: dict[str, str]) -> bool:
    """Whether a name a query uses is a series of the exposition: a metric as typed (a counter
    with its _total), or a histogram's _bucket, _sum or _count."""
    if name in types:
        return True
    for suffix in HISTOGRAM_SERIES:
        if name.endswith(suffix) and types.get(name.removesuffix(suffix)) == "histogram":
            return True
    return False


def promtool(*args: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    """Run promtool (skip when it is not installed)."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)")
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _get(url: str) -> tuple[int, str]:
    """HTTP GET: status and body; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


# ----- the files ------------------------------------------------------------------------------


def test_the_dashboard_has_the_panels() -> None:
    panels = dashboard_queries()
    assert set(panels) >= PANELS, sorted(PANELS - set(panels))
    assert all(exprs for exprs in panels.values()), "a panel without a query"
    assert any("histogram_quantile(0.99" in e for e in panels["Processing p99"])
    assert any("spma_processing_seconds_bucket" in e for e in panels["Processing p99"])
    assert all("rate(" in e or "increase(" in e for e in panels["Inputs a second"])
    layout = json.loads(DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in layout}) == len(layout), "panel ids repeat"
    cells: set[tuple[int, int]] = set()
    for p in layout:  # inside Grafana's 24 columns, no panel over another
        box = p["gridPos"]
        assert box["x"] + box["w"] <= 24, p["title"]
        mine = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine


def test_every_alert_says_what_it_means_and_what_to_do() -> None:
    found = {r["alert"]: r for r in rules()}
    assert set(found) >= ALERTS, sorted(ALERTS - set(found))
    for name, rule in found.items():
        notes = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert len(notes.get(key, "")) > 20, f"{name}: no {key}"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
    job = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"][0]["job_name"]
    assert found["SpmaWorkerDown"]["expr"] == f'up{{job="{job}"}} == 0'


def test_the_readme_documents_every_alert_and_panel() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in {r["alert"] for r in rules()} | set(dashboard_queries()):
        assert name in readme, f"README.md does not name {name}"


def test_metric_names_are_read_from_queries() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(spma_processing_seconds_bucket{k="x_y"}[1m])))'
    )
    assert metric_names(expr) == {"spma_processing_seconds_bucket"}
    assert metric_names('label_replace(spma_consumer_lag, "topic", "$1", "spma_x", "(.*)")') == {
        "spma_consumer_lag"
    }
    types = {"spma_rebalances_total": "counter", "spma_rebalance_seconds": "histogram"}
    assert exposed("spma_rebalance_seconds_bucket", types)
    assert exposed("spma_rebalances_total", types)
    assert not exposed("spma_rebalances", types)
    assert not exposed("spma_rebalances_total_bucket", types)


# ----- promtool ---------------------------------------------------------------------------------


def test_promtool_accepts_the_rules_and_the_configuration() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    done = promtool("check", "config", PROMETHEUS.name)  # also loads the rule files it names
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_fire_when_they_should() -> None:
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_dashboards_queries(tmp_path: Path) -> None:
    """Each query as a recording rule, Grafana's $__rate_interval as a range, so promtool parses
    it as Prometheus would."""
    recorded = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, (_, expr) in enumerate(q for q in queries() if q[0].startswith("panel"))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    done = promtool("check", "rules", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


# ----- a live worker ----------------------------------------------------------------------------


@pytest.mark.broker
def test_every_metric_queried_is_on_a_live_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    wanted: dict[str, set[str]] = {}
    for where, expr in queries():
        for name in metric_names(expr):
            wanted.setdefault(name, set()).add(where)
    assert "spma_processing_seconds_bucket" in wanted and "spma_accounts" in wanted
    with running(kafka_bootstrap, tmp_path, workers=1, partitions=2) as h:
        port = h.web_ports[0]
        deadline = time.monotonic() + 90
        code, body = 0, ""
        while code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            code, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert code == 200, f"no /metrics\n{h.log_tail()}"
        types = typed_names(body)
        missing = {
            name: sorted(where) for name, where in wanted.items() if not exposed(name, types)
        }
        assert not missing, f"not on a worker's /metrics: {missing}"
        # The containers' healthchecks: this machine's worker, found from the same settings.
        env = {**os.environ, "SPMA_WEB_PORT": str(port), "SPMA_WEB_HOST": "127.0.0.1"}
        probe = [sys.executable, "-m", "infra.probe"]
        health = subprocess.run(
            [*probe, "/health"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
        )
        assert health.returncode == 0, health.stdout + health.stderr
        ready = None
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [*probe, "/ready"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
            )
            if ready.returncode == 0:
                break
            time.sleep(1)
        assert ready is not None and ready.returncode == 0, f"{ready}\n{h.log_tail()}"
        assert '"ready":true' in ready.stdout.replace(" ", ""), ready.stdout
