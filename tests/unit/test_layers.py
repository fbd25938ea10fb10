"""The import rule: the package's layers import only downward, and nothing imports in a
circle. Read from the source (every import, also those inside functions; not those under
`if TYPE_CHECKING:`), so a new upward import or cycle fails here, whatever its reason.

    rank  layer
    8     benchmarks
    7     testbed (the package root: the public API)
    6     testbed.cli, experiments             (siblings: neither imports the other)
    5     testbed.cluster                      the lifecycle
    4     testbed.pods, testbed.emulation,     pods and wirings; Mininet adapters;
          testbed.proxy                        the node's kube-proxy process
    3     testbed.records, testbed.results     run records and cleanup; reports
    2     testbed.model, testbed.kernel, testbed.measure
                                               pure model; kernel calls; tool parsers
    1     testbed.errors
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("testbed", "experiments", "benchmarks")
RANKS: dict[str, int] = {
    "testbed.errors": 1,
    "testbed.model": 2, "testbed.kernel": 2, "testbed.measure": 2,
    "testbed.records": 3, "testbed.results": 3,
    "testbed.pods": 4, "testbed.emulation": 4, "testbed.proxy": 4,
    "testbed.cluster": 5,
    "testbed.cli": 6, "experiments": 6,
    "testbed": 7,
    "benchmarks": 8,
}
# Layers that must stay free of Mininet and of processes: they are tested without root.
PURE = {"testbed.model": ("mininet", "ipmininet", "subprocess", "socket", "ctypes"),
        "testbed.measure": ("mininet", "ipmininet", "subprocess", "socket", "ctypes"),
        "testbed.results": ("mininet", "ipmininet"),
        "testbed.kernel": ("mininet", "ipmininet")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING")


def imported_names(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) of every import that runs, wherever it stands."""
    out: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in node.orelse:  # only the else branch runs
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def graph(known: Mapping[str, Path]) -> dict[str, set[str]]:
    """module -> the project's modules it imports (`from pkg import mod` names the module)."""
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str] = set()
        for module, names in imported_names(ast.parse(path.read_text(), str(path))):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
            if subs:
                targets.update(subs)
            if module in known and len(subs) < len(names or [None]):
                targets.add(module)
        edges[name] = targets - {name}
    return edges


def layer(module: str) -> str | None:
    """The longest layer name that is the module or a package holding it."""
    best = None
    for candidate in RANKS:
        if (module == candidate or module.startswith(candidate + ".")) and (
                best is None or len(candidate) > len(best)):
            best = candidate
    return best


def upward(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """Imports that do not go down a layer (or stay inside one package)."""
    bad = []
    for src, targets in edges.items():
        for dst in targets:
            a, b = layer(src), layer(dst)
            if a is None or b is None or a == b:
                continue
            if RANKS[b] >= RANKS[a]:
                bad.append(f"{src} ({a}, rank {RANKS[a]}) imports {dst} ({b}, rank {RANKS[b]})")
    return sorted(bad)


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph(modules())


def test_every_module_belongs_to_a_layer() -> None:
    homeless = [m for m in modules() if layer(m) is None]
    assert homeless == [], "give these a layer in RANKS (and the README's layout)"


def test_imports_only_go_down(edges: dict[str, set[str]]) -> None:
    assert upward(edges) == []


def test_nothing_imports_in_a_circle(edges: dict[str, set[str]]) -> None:
    assert cycles(edges) == []


def test_the_graph_sees_imports_inside_functions(edges: dict[str, set[str]]) -> None:
    """A lazy import is still an import: `testbed up` loads the cluster on demand."""
    assert "testbed.cluster" in edges["testbed.cli.main"]
    assert "testbed.cli.shell" in edges["testbed.cli.main"]


@pytest.mark.parametrize("package", sorted(PURE))
def test_pure_layers_import_no_mininet_and_spawn_nothing(package: str) -> None:
    forbidden = PURE[package]
    found = []
    for name, path in modules().items():
        if layer(name) != package:
            continue
        for module, _ in imported_names(ast.parse(path.read_text())):
            if module.split(".")[0] in forbidden:
                found.append(f"{name} imports {module}")
    assert found == []


# -- the checker itself: it must fail on what it is there to catch ---------------------

def test_the_checker_finds_an_upward_import() -> None:
    assert upward({"testbed.model.spec": {"testbed.cluster.up"}}) == [
        "testbed.model.spec (testbed.model, rank 2) imports testbed.cluster.up "
        "(testbed.cluster, rank 5)"]
    assert upward({"testbed.pods.pause": {"testbed.emulation.nodes"}}) != []  # siblings
    assert upward({"testbed.cluster.up": {"testbed.model.spec"}}) == []


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_reads_imports_as_python_runs_them(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import testbed.kernel.ns\n"
        "if TYPE_CHECKING:\n"
        "    from testbed.cluster import Cluster\n"
        "def lazy():\n"
        "    from testbed.model import spec\n"
    )
    found = imported_names(ast.parse(source))
    assert ("testbed.kernel.ns", []) in found
    assert ("testbed.model", ["spec"]) in found  # inside a function: counted
    assert all(module != "testbed.cluster" for module, _ in found)  # type hints only
