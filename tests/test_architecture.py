"""The import graph runs one way: no module imports one of a layer above it, no two modules
import each other, directly or around a longer circle (docs/architecture.md draws the layers).

Imports are read from the source with ``ast`` (every import counts, also those under
``TYPE_CHECKING`` or inside a function): a dependency is a dependency wherever it is written.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "infra", "streams", "bench")

LAYERS: tuple[tuple[str, ...], ...] = (
    ("engine", "engine.derive"),  # the pure model; engine.derive: Derive's PMRM_2 beside ours
    ("infra",),  # settings and brokers: the process's infrastructure, nothing of the domain
    (
        "streams.errors",
        "streams.records",
        "streams.ids",
        "streams.topics",
        "streams.codec",
    ),  # records, topics
    ("streams.market",),  # the market agent's state, free of Kafka
    ("streams.accounts",),  # the account partitions' logic, free of Kafka
    ("streams.fund",),  # the insurance fund's single owner, free of Kafka
    (
        "streams.kafka_io",
        "streams.topics.admin",
        "streams.topics.describe",
        "streams.topics.migrate",
        "streams.scaling",
    ),  # plain Kafka clients; streams.scaling: the account layouts and their migration
    ("streams.agents",),  # the Faust layer: worker, agents, tables, web views, metrics
    ("streams.tools",),  # demo, simulator, load generator
    ("streams.cli",),  # the composition root: imports everything, nothing imports it
    ("bench",),
)
"""Layers from the bottom up: a module may import its own layer's modules and those below."""


def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def _targets(node: ast.Import | ast.ImportFrom, here: str) -> Iterator[str]:
    """The dotted names an import statement names (a module, or a package and its names)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = here.split(".")
        if MODULES[here].name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        yield f"{base}.{alias.name}"
        yield base


def _owner(name: str) -> str | None:
    """The module of the tree a dotted name lies in (None outside the tree)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The modules of the tree that a module imports."""
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(node, module):
                owner = _owner(target)
                if owner is not None and owner != module:
                    found.add(owner)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer_of(module: str) -> int:
    """The index of a module's layer (the longest matching prefix)."""
    best, length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if layer_of(m) < 0 and "." in m] == []


def test_no_module_imports_one_above_it() -> None:
    upward = sorted(
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )
    assert upward == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (the import circles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circles() -> None:
    assert strongly_connected(GRAPH) == []


@pytest.mark.parametrize(
    ("graph", "circles"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_circles_are_found(graph: dict[str, set[str]], circles: list[list[str]]) -> None:
    assert strongly_connected(graph) == circles


def test_an_upward_import_is_seen() -> None:
    assert "streams.agents.app" in GRAPH["streams.cli.commands.worker"]
    assert layer_of("streams.cli.main") > layer_of("streams.agents.app") > layer_of("engine.book")
    assert layer_of("streams.topics.admin") > layer_of("streams.topics.catalog")


def test_nothing_imports_the_command_line() -> None:
    importers = sorted(
        module
        for module, targets in GRAPH.items()
        if not module.startswith("streams.cli")
        and any(t.startswith("streams.cli") for t in targets)
    )
    assert importers == []


def test_no_module_shadows_a_library_it_imports() -> None:
    """A module named like a library (``streams/faust/``) takes the library's place for a process
    started in its folder: the demo's worker once failed on ``import faust`` that way."""
    libraries = set()
    for module in MODULES:
        for node in ast.walk(ast.parse(MODULES[module].read_text())):
            if isinstance(node, ast.Import):
                libraries |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                libraries.add(node.module.split(".")[0])
    ours = {name.rsplit(".", 1)[-1] for name in MODULES if "." in name}
    assert sorted(ours & (libraries - set(PACKAGES) - {"schemas"})) == []
