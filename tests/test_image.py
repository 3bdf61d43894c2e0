"""The worker image (Dockerfile) is reproducible and checks its own health: the base image pinned
to a release, every Python package the project needs pinned by constraints.txt and the install
held to it, a HEALTHCHECK through infra/probe.py. Read from the files: no Docker engine here."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.broker import free_port
from infra.probe import PATHS, main, probe_url
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def pins() -> dict[str, str]:
    """constraints.txt: canonical distribution name -> pinned version."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not pinned with =="
            found[canonicalize_name(name)] = version
    return found


def runtime_closure(name: str) -> set[str]:
    """The distributions an installed distribution needs at run time (its own extras not, those
    it asks of a dependency, e.g. confluent-kafka[schemaregistry], yes), transitively, as
    installed here (markers evaluated for this Python and platform)."""
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(name, frozenset())]
    while todo:
        current, extras = todo.pop()
        for text in distribution(current).requires or []:
            req = Requirement(text)
            wanted = ["", *sorted(extras)]
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": e}) for e in wanted
            ):
                continue
            key = canonicalize_name(req.name)
            new = {(key, e) for e in ["", *req.extras]} - seen
            if not new:
                continue
            seen |= new
            try:
                distribution(req.name)
            except PackageNotFoundError:
                continue
            todo.append((req.name, frozenset(req.extras)))
    return {key for key, _ in seen}


def test_base_images_are_pinned_to_a_release() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert bases
    for image in bases:
        tag = image.partition(":")[2]
        assert re.match(r"\d+\.\d+\.\d+-", tag), f"{image}: pin the Python release"


def test_the_install_is_held_to_the_constraints() -> None:
    assert "COPY constraints.txt" in DOCKERFILE
    (install,) = [line for line in DOCKERFILE.splitlines() if "pip install" in line]
    assert "PIP_CONSTRAINT=/src/constraints.txt" in install or "-c constraints.txt" in install


def test_constraints_pin_every_runtime_dependency() -> None:
    pinned = pins()
    assert "spma" not in pinned, "the project itself is built, not pinned"
    missing = runtime_closure("spma") - set(pinned)
    assert not missing, f"constraints.txt lacks {sorted(missing)}: run `make constraints`"
    # The project's own ranges admit the pinned versions (pyproject.toml changed: regenerate).
    for text in distribution("spma").requires or []:
        req = Requirement(text)
        key = canonicalize_name(req.name)
        if key in pinned:
            assert req.specifier.contains(pinned[key], prereleases=True), (text, pinned[key])
    # The build step is pinned too (PIP_CONSTRAINT reaches pip's isolated build environment).
    assert {"setuptools", "wheel"} <= set(pinned)


def test_the_image_checks_its_liveness() -> None:
    instructions = DOCKERFILE.replace("\\\n", " ")  # continuation lines joined
    (check,) = [line for line in instructions.splitlines() if line.startswith("HEALTHCHECK")]
    assert 'CMD ["python", "-m", "infra.probe", "/health"]' in check


def test_the_probe_asks_where_the_worker_listens() -> None:
    assert probe_url(Settings(web_port=7001), "/ready") == "http://127.0.0.1:7001/ready"
    wildcard = Settings(web_host="0.0.0.0", web_port=6066, web_token="t")
    assert probe_url(wildcard, "/health") == "http://127.0.0.1:6066/health"
    assert probe_url(Settings(web_host="::1"), "/ready") == "http://[::1]:6066/ready"
    assert set(PATHS) == {"/health", "/ready"}


def test_the_probe_fails_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPMA_WEB_HOST", "127.0.0.1")
    monkeypatch.setenv("SPMA_WEB_PORT", str(free_port()))
    assert main(["/ready"]) == 1
    assert "no answer" in capsys.readouterr().out
    assert main(["/metrics"]) == 2, "only /health and /ready need no token"
