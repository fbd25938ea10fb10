"""The import rule: the package's layers import only downward, and nothing imports in a
circle, neither module to module nor folder to folder (package P imports from package Q and
Q from P, at any depth). Read from the source (every import, also those inside functions and
relative ones, resolved; not those under `if TYPE_CHECKING:`), so a new upward import or
cycle fails here, whatever its reason; a relative import that resolves to no module fails
too, rather than being skipped. Experiments import only the public API and the pure layers
(EXPERIMENTS_MAY_IMPORT), less a shrinking list of today's exceptions.

    rank  layer
    8     benchmarks
    7     testbed.cli, experiments             (siblings: neither imports the other)
    6     testbed (the package root: the public API, which experiments are to use)
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
    # the root under its users: it imports only the cluster and what is below (lazily)
    "testbed": 6,
    "testbed.cli": 7, "experiments": 7,
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


def package_of(name: str, path: Path) -> str:
    """The package a module's relative imports start from (Python's `__package__`)."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def resolve_relative(package: str, level: int, module: str | None) -> str | None:
    """`from {'.' * level}{module} import ...` written in `package`, as an absolute name;
    None when the dots climb above the top-level package (Python raises ImportError)."""
    parts = package.split(".") if package else []
    if level - 1 >= len(parts):
        return None
    base = parts[:len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _type_checking_only(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING")


def imported_names(tree: ast.AST, package: str = "") -> list[tuple[str, list[str]]]:
    """(module, names taken from it) of every import that runs, wherever it stands; relative
    imports resolved from `package` (one that climbs above the top is kept as written, dots
    and all, so that it matches no module and `unresolved_relative_imports` reports it)."""
    out: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in node.orelse:  # only the else branch runs
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                written = "." * node.level + (node.module or "")
                resolved = resolve_relative(package, node.level, node.module)
                out.append((written if resolved is None else resolved, names))
            elif node.module:
                out.append((node.module, names))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def graph(known: Mapping[str, Path]) -> dict[str, set[str]]:
    """module -> the project's modules it imports (`from pkg import mod` names the module)."""
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for module, names in imported_names(tree, package_of(name, path)):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
            if subs:
                targets.update(subs)
            if module in known and len(subs) < len(names or [None]):
                targets.add(module)
        edges[name] = targets - {name}
    return edges


def unresolved_relative_imports(known: Mapping[str, Path]) -> list[str]:
    """Relative imports that name no module of the project: they would fail when run, and the
    graph, which follows only the project's modules, would otherwise not see them."""
    bad = []
    for name, path in known.items():
        package = package_of(name, path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            written = "." * node.level + (node.module or "")
            resolved = resolve_relative(package, node.level, node.module)
            if resolved is None or resolved not in known:
                bad.append(f"{name}: from {written} import ... ({resolved or 'above the top'})")
    return sorted(bad)


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


def folder(name: str, path: Path) -> str:
    """The package a module counts in for folder-level cycles: the folder it sits in (a
    package's `__init__` is in its own), unless RANKS gives the module a layer of its own, as
    it does testbed/errors.py (rank 1, under the package root's rank 7: the root's folder
    holds the two only so that `testbed.errors` is a short name)."""
    own = layer(name)
    home = package_of(name, path)
    return own if own is not None and len(own) > len(home) else home


def folder_edges(edges: Mapping[str, Iterable[str]],
                 known: Mapping[str, Path]) -> dict[str, set[str]]:
    """package -> the packages its modules import from (itself left out)."""
    out: dict[str, set[str]] = {}
    for src, targets in edges.items():
        a = folder(src, known[src])
        out.setdefault(a, set()).update(
            b for b in (folder(dst, known[dst]) for dst in targets) if b != a)
    return out


# Folder cycles known today, each with why it stays for now. The list may only shrink: the
# test fails on a cycle not listed here and on an entry that no longer occurs.
KNOWN_FOLDER_CYCLES: list[list[str]] = [
    # none today: proxy <-> proxy/modes went when what the modes share moved to
    # proxy/common/ (kubeproxy -> modes -> common, one way)
]


# Experiments may import the public API (the package root `testbed`), the pure layers and
# themselves: what they do to a cluster goes through `Cluster`, so that the cluster's inside
# can change without them. Anything outside the project (stdlib, third-party) is free.
EXPERIMENTS_MAY_IMPORT = ("testbed.measure", "testbed.results", "testbed.model", "experiments")

# Today's exceptions, module -> forbidden import. They exist because the experiments were
# written against the cluster's internals before the rule; narrowing `Cluster` so that they
# need not (issue 24) removes them one by one. The list may only shrink: the test fails on an
# import not listed here and on an entry that no longer occurs (delete it then).
KNOWN_EXPERIMENT_IMPORTS = {
    ("experiments.framework.base", "testbed.cluster"),
    ("experiments.framework.base", "testbed.errors"),
    ("experiments.framework.base", "testbed.kernel.procs"),
    ("experiments.framework.base", "testbed.pods.wiring"),
    ("experiments.campaign", "testbed.errors"),
    ("experiments.campaign", "testbed.kernel.files"),
    ("experiments.campaign", "testbed.pods.wiring"),
    ("experiments.catalogue.measurements.compare_modes", "testbed.cluster"),
    ("experiments.catalogue.measurements.compare_modes", "testbed.errors"),
    ("experiments.catalogue.measurements.compare_modes", "testbed.kernel.procs"),
    ("experiments.catalogue.article.docker0_collision", "testbed.cluster"),
    ("experiments.catalogue.article.docker0_collision", "testbed.errors"),
    ("experiments.catalogue.article.docker0_collision", "testbed.pods.wiring"),
    ("experiments.catalogue.measurements.faults", "testbed.cluster"),
    ("experiments.catalogue.measurements.faults", "testbed.errors"),
    ("experiments.catalogue.article.gateway_routes", "testbed.cluster"),
    # the claims of other pod networks: what experiments.mode_claims imported, split
    ("experiments.catalogue.modes.common", "testbed.cluster"),
    ("experiments.catalogue.modes.host_gw_routes", "testbed.cluster"),
    ("experiments.catalogue.modes.vxlan_mtu", "testbed.errors"),
    ("experiments.catalogue.article.no_masquerade", "testbed.errors"),
    ("experiments.catalogue.article.no_masquerade", "testbed.kernel.procs"),
    # the claims from outside: what experiments.out_claims imported, split
    ("experiments.catalogue.outside.common", "testbed.cluster"),
    ("experiments.catalogue.outside.traffic_policy", "testbed.cluster"),
    ("experiments.catalogue.article.pause_holds_netns", "testbed.errors"),
    ("experiments.catalogue.article.pause_holds_netns", "testbed.kernel.ns"),
    ("experiments.catalogue.measurements.reachability", "testbed.errors"),
    ("experiments.run", "testbed.pods.wiring"),
    # the run's lifecycle moved from run.py into session.py (575f7a6), its imports with it
    ("experiments.session", "testbed.cluster.preflight"),
    ("experiments.session", "testbed.errors"),
    ("experiments.session", "testbed.kernel.procs"),
    ("experiments.session", "testbed.pods.wiring"),
    ("experiments.suite", "testbed.cluster"),
    ("experiments.suite", "testbed.kernel.procs"),
    # the Services claims: what experiments.svc_claims imported, split
    ("experiments.catalogue.services.common", "testbed.cluster"),
    ("experiments.catalogue.services.kube_proxy_down", "testbed.cluster"),
    ("experiments.catalogue.services.userspace_proxy", "testbed.cluster"),
    ("experiments.framework.svc_common", "testbed.cluster"),
    ("experiments.framework.svc_common", "testbed.errors"),
    ("experiments.framework.svc_common", "testbed.kernel.procs"),
    ("experiments.catalogue.measurements.throughput", "testbed.cluster"),
    ("experiments.catalogue.measurements.throughput", "testbed.errors"),
    ("experiments.catalogue.measurements.throughput", "testbed.kernel.procs"),
}


def experiment_imports_outside(edges: Mapping[str, Iterable[str]]) -> set[tuple[str, str]]:
    """(experiment module, project module it imports outside EXPERIMENTS_MAY_IMPORT)."""
    return {(src, dst) for src, targets in edges.items() if layer(src) == "experiments"
            for dst in targets
            if dst != "testbed" and not any(dst == allowed or dst.startswith(allowed + ".")
                                            for allowed in EXPERIMENTS_MAY_IMPORT)}


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


def test_no_folder_imports_in_a_circle(edges: dict[str, set[str]]) -> None:
    """Modules may form no cycle and still tie their folders in one: the loaders, when they
    sat in testbed/model/, imported the pod networks, which import testbed/model's types
    (they now have testbed/model/load/ of their own)."""
    found = cycles(folder_edges(edges, modules()))
    assert [c for c in found if c not in KNOWN_FOLDER_CYCLES] == []
    assert [c for c in KNOWN_FOLDER_CYCLES if c not in found] == [], (
        "gone: delete them from KNOWN_FOLDER_CYCLES")


def test_every_relative_import_resolves() -> None:
    assert unresolved_relative_imports(modules()) == []


def test_experiments_import_the_public_api_and_the_pure_layers(
        edges: dict[str, set[str]]) -> None:
    found = experiment_imports_outside(edges)
    assert sorted(found - KNOWN_EXPERIMENT_IMPORTS) == [], (
        "import these through `testbed` or the pure layers (EXPERIMENTS_MAY_IMPORT)")
    assert sorted(KNOWN_EXPERIMENT_IMPORTS - found) == [], (
        "gone: delete them from KNOWN_EXPERIMENT_IMPORTS")


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
    # experiments may use the public API, which must not use them
    assert upward({"experiments.framework.base": {"testbed"}}) == []
    assert upward({"testbed": {"experiments.framework.base"}}) != []


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


def test_the_checker_resolves_relative_imports(tmp_path: Path) -> None:
    source = ("from . import spec\n"
              "from .podnet import base\n"
              "from ..errors import SpecError\n"
              "from .... import far\n")
    found = imported_names(ast.parse(source), "testbed.model")
    assert ("testbed.model", ["spec"]) in found
    assert ("testbed.model.podnet", ["base"]) in found
    assert ("testbed.errors", ["SpecError"]) in found
    assert ("....", ["far"]) in found  # above the top: kept as written, matches nothing
    assert resolve_relative("testbed.model", 1, None) == "testbed.model"
    assert resolve_relative("testbed", 2, "x") is None
    pkg = tmp_path / "testbed"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .b import c\nfrom .. import d\n")
    known = {"testbed": pkg / "__init__.py", "testbed.a": pkg / "a.py"}
    assert unresolved_relative_imports(known) == [
        "testbed.a: from .. import ... (above the top)",
        "testbed.a: from .b import ... (testbed.b)"]


def test_the_checker_finds_a_folder_cycle(tmp_path: Path) -> None:
    """Two folders that import each other, with no module-level cycle: the loader imports a
    pod network, the pod network a type beside the loader."""
    paths = {name: tmp_path / (name.replace(".", "/") + ".py") for name in (
        "testbed.model.loader", "testbed.model.spec", "testbed.model.podnet.base")}
    edges = {"testbed.model.loader": {"testbed.model.podnet.base"},
             "testbed.model.podnet.base": {"testbed.model.spec"},
             "testbed.model.spec": set()}
    assert cycles(edges) == []
    assert cycles(folder_edges(edges, paths)) == [["testbed.model", "testbed.model.podnet"]]
    paths["testbed.errors"] = tmp_path / "testbed" / "errors.py"
    paths["testbed"] = tmp_path / "testbed" / "__init__.py"
    root = {"testbed": {"testbed.model.spec"}, "testbed.model.spec": {"testbed.errors"},
            "testbed.errors": set()}
    assert cycles(folder_edges(root, paths)) == []  # errors.py is a layer of its own


def test_the_checker_finds_an_experiment_import_outside_its_allow_list() -> None:
    edges = {"experiments.x": {"testbed", "testbed.model.spec", "testbed.measure.ping",
                               "testbed.cluster.up", "experiments.framework.base"},
             "testbed.cli.main": {"testbed.cluster.up"}}
    assert experiment_imports_outside(edges) == {("experiments.x", "testbed.cluster.up")}
