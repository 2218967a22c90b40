"""The layer order of DESIGN.md, held by a machine: a wrong arrow fails the build.

Every ``import`` in src/headwater counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: a function-level import is still an arrow between two packages. The
order (each package may import the ones listed for it, and its own modules)::

    core ← config, monitor              (config and monitor use core alone)
         ← contract ← store ← monitor.alerts
         ← brokers ← ingest | stream     (ingest and stream never import each other)
         ← ml ← serve ← deploy ← monitor.dashboard ← console ← quickstart ← cli

``headwater._version`` is importable by all; nothing inside the package imports the package root
``headwater``, and nothing imports cli. Packages that do not exist yet are checked the moment
they land. Inside a package, modules must not form import cycles either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src"

_ORDER: list[tuple[str, set[str]]] = [
    ("core", set()),
    ("config", {"core"}),
    ("monitor", {"core"}),
    ("contract", {"core", "config", "monitor"}),
    ("store", {"contract"}),
    ("monitor.alerts", {"store"}),
    ("brokers", {"store", "monitor.alerts"}),
    ("ingest", {"brokers"}),
    ("stream", {"brokers"}),
    ("ml", {"ingest", "stream"}),
    ("serve", {"ml"}),
    ("deploy", {"serve"}),
    ("monitor.dashboard", {"deploy"}),
    ("console", {"monitor.dashboard"}),
    ("quickstart", {"console"}),
    ("cli", {"quickstart"}),
    ("__main__", {"cli"}),  # `python -m headwater`
]


def _allowed() -> dict[str, set[str]]:
    """Each layer with every layer it may import (what it names, and all those below them)."""
    allowed: dict[str, set[str]] = {}
    for layer, below in _ORDER:
        allowed[layer] = {"_version", layer}.union(*(allowed[b] | {b} for b in below))
    return allowed


ALLOWED = _allowed()


def layer_of(module: str) -> str | None:
    """The layer a module belongs to: the longest layer name that prefixes it (``headwater.`` off).

    >>> layer_of("headwater.monitor.alerts._rules"), layer_of("headwater.monitor._run")
    ('monitor.alerts', 'monitor')
    """
    parts = module.split(".")[1:]
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in ALLOWED or ".".join(parts[:n]) == "_version":
            return ".".join(parts[:n])
    return None


def modules() -> dict[str, Path]:
    """Every module of src/headwater by its dotted name (a package by its own name)."""
    found = {}
    for path in sorted((SRC / "headwater").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported headwater module, line) for every import in ``path``, relative ones resolved;
    ``from package import name`` yields the submodule when ``name`` is one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    known = modules()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "headwater":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "headwater":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def violations() -> list[str]:
    """Every import that breaks the order, as 'file:line: a -> b (why)'."""
    found = []
    for module, path in modules().items():
        if module == "headwater":
            continue
        source = layer_of(module)
        for target, line in imports(module, path):
            where = f"{path.relative_to(SRC)}:{line}: {module} -> {target}"
            if target == "headwater":
                found.append(f"{where} (import the package root: use headwater._version)")
                continue
            dest = layer_of(target)
            if source is None or dest is None:
                found.append(f"{where} (not in the layer order of tests/unit/test_layers.py)")
            elif dest not in ALLOWED[source]:
                found.append(f"{where} ({source} may not import {dest})")
    return found


def cycles() -> list[list[str]]:
    """Import cycles between the modules of one package (Tarjan's strongly connected
    components), counting function-level imports."""
    known = modules()
    graph = {m: sorted({t for t, _ in imports(m, p) if t in known and t != m}) for m, p in
             known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            # a package's __init__ re-exporting its modules is not a cycle of design
            if len([m for m in component if known[m].name != "__init__.py"]) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_every_import_follows_the_layer_order() -> None:
    assert violations() == []


def test_no_import_cycles_inside_a_package() -> None:
    assert cycles() == []


def test_every_package_has_a_layer() -> None:
    missing = sorted({m for m in modules() if m != "headwater" and layer_of(m) is None})
    assert missing == []


@pytest.mark.parametrize(("module", "target", "ok"), [
    ("headwater.ingest._run", "headwater.stream", False),
    ("headwater.stream._run", "headwater.ingest", False),
    ("headwater.config._project", "headwater.monitor", False),
    ("headwater.monitor._run", "headwater.config", False),
    ("headwater.quickstart._files", "headwater.cli._render", False),
    ("headwater.serve._app", "headwater.ml.recommend", True),
    ("headwater.ml._cv", "headwater.serve", False),
    ("headwater.monitor.alerts._rules", "headwater.store", True),
    ("headwater.store._duckdb", "headwater.monitor.alerts", False),
    ("headwater.monitor.dashboard._app", "headwater.ml._tracking", True),
    ("headwater.console._train", "headwater.cli", False),
    ("headwater.cli._train", "headwater.console", True),
])
def test_the_order_itself(module: str, target: str, ok: bool) -> None:
    """The order forbids what DESIGN.md forbids, for packages that do not exist yet too."""
    assert (layer_of(target) in ALLOWED[layer_of(module)]) is ok
