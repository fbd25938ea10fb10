"""The catalogue's shape (experiments/catalogue/): a claim is declared once, by its class,
in a module of its own; the claims table and the suite's order are read from the registry;
a catalogue module borrows from no other experiment, only from the framework and its own
part's common.py. Read from the registry and the source, without running anything."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from experiments.claims import CLAIMS
from experiments.framework.base import CLAIM, SHARED_CLUSTER
from experiments.registry import ARTICLE_ORDER, REGISTRY

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "experiments" / "catalogue"


def test_the_claims_table_is_the_registrys_claims_in_the_articles_order() -> None:
    claims = [e for e in ARTICLE_ORDER if e.kind == CLAIM]
    assert list(CLAIMS) == [e.name for e in claims]
    assert list(CLAIMS.values()) == [e.statement for e in claims]  # type: ignore[attr-defined]


def test_the_suite_order_is_the_articles_with_the_shared_cluster_first() -> None:
    shared = [e.name for e in ARTICLE_ORDER if e.needs == SHARED_CLUSTER]
    own = [e.name for e in ARTICLE_ORDER if e.needs != SHARED_CLUSTER]
    assert list(REGISTRY) == shared + own


def test_each_claim_has_a_module_of_its_own_in_the_catalogue() -> None:
    modules = [inspect.getmodule(type(e)) for e in ARTICLE_ORDER]
    assert len({m.__name__ for m in modules if m}) == len(ARTICLE_ORDER)
    for e, module in zip(ARTICLE_ORDER, modules):
        assert module is not None and module.__name__.startswith("experiments.catalogue."), e
        if e.kind == CLAIM:
            # stated on the class itself, not inherited from a part's base class
            assert {"name", "statement"} <= set(vars(type(e))), e.name


def test_catalogue_modules_borrow_only_from_the_framework_and_their_common() -> None:
    borrowed = []
    for path in sorted(CATALOGUE.rglob("*.py")):
        part = ".".join(path.relative_to(ROOT).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("experiments") and not (
                        name.startswith("experiments.framework")
                        or name == f"{part}.common"):
                    borrowed.append(f"{path.relative_to(ROOT)}: {name}")
    assert borrowed == [], "shared helpers go in experiments/framework/ or the part's common.py"


def test_the_topologies_the_experiments_name_exist() -> None:
    """A module moved one folder deeper once pointed its Services topology at
    experiments/topologies/, and seven claims answered `error` (no such file) in the quick
    suite; every topology path a module of experiments/ holds must name a file there."""
    import importlib
    import pkgutil

    import experiments

    paths = []
    for info in pkgutil.walk_packages(experiments.__path__, "experiments."):
        module = importlib.import_module(info.name)
        for name in ("TOPOLOGY", "TOPOLOGIES", "DEFAULT_TOPOLOGY"):
            value = getattr(module, name, None)
            if isinstance(value, Path):
                paths.append((info.name, name, value))
    assert len(paths) >= 4, paths
    assert [p for p in paths if not p[2].exists()] == []
