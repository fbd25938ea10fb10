"""The project's code runs on Python 3.8 (the Mininet VM image's Python): checked here from
the source, by vermin (standard-library use and syntax newer than 3.8) and by an AST walk
for what vermin does not see when annotations are postponed: `X | Y` outside annotations,
builtin generics subscripted at run time, dict merges with `|`, and a few 3.9+ methods.

Annotations are exempt: every module has `from __future__ import annotations`, so they are
never evaluated (checked here too).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ("testbed", "experiments", "benchmarks", "tests")
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}
ABC_GENERICS = {"Callable", "Iterable", "Iterator", "Mapping", "Sequence", "Generator",
                "MutableMapping", "Collection"}
NEWER_METHODS = {"removeprefix": "3.9", "removesuffix": "3.9", "is_relative_to": "3.9",
                 "with_stem": "3.9", "bit_count": "3.10"}
TYPE_NAMES = {"int", "str", "float", "bytes", "bool", "list", "dict", "tuple", "set"}


def sources() -> list[Path]:
    return [p for d in CODE for p in sorted((ROOT / d).rglob("*.py"))]


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation (postponed: never evaluated)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        notes = []
        if isinstance(node, ast.AnnAssign) or (isinstance(node, ast.arg)
                                               and node.annotation is not None):
            notes.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            notes.append(node.returns)
        for note in notes:
            inside.update(id(n) for n in ast.walk(note))
    return inside


def _looks_like_a_type(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Subscript):
        return True
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in TYPE_NAMES or (name[:1].isupper() and any(c.islower() for c in name))


def newer_than_38(source: str) -> list[str]:
    """What in `source` needs Python 3.9 or later at run time, as 'line: what'."""
    tree = ast.parse(source)
    notes = _annotation_nodes(tree)
    abc_names = {alias.asname or alias.name for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module == "collections.abc"
                 for alias in node.names}
    found = []
    for node in ast.walk(tree):
        if id(node) in notes:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = (node.left, node.right)
            if any(isinstance(s, (ast.Dict, ast.DictComp)) for s in sides):
                found.append(f"{line}: dict merge with | (3.9)")
            elif all(_looks_like_a_type(s) for s in sides):
                found.append(f"{line}: union type X | Y at run time (3.10)")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Attribute)):
            name = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
            if name in BUILTIN_GENERICS or (
                    isinstance(node.value, ast.Attribute) and name in ABC_GENERICS) or (
                    isinstance(node.value, ast.Name) and name in abc_names):
                found.append(f"{line}: {name}[...] at run time (3.9)")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in NEWER_METHODS):
            found.append(f"{line}: .{node.func.attr}() ({NEWER_METHODS[node.func.attr]})")
        if isinstance(node, ast.Call) and any(k.arg == "strict" for k in node.keywords) and (
                getattr(node.func, "id", "") == "zip"):
            found.append(f"{line}: zip(strict=) (3.10)")
    return found


def _has_annotations(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.AnnAssign) or (isinstance(n, ast.arg) and n.annotation)
               or (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.returns)
               for n in ast.walk(tree))


def test_every_module_postpones_its_annotations() -> None:
    missing = [str(p.relative_to(ROOT)) for p in sources()
               if _has_annotations(ast.parse(p.read_text()))
               and "from __future__ import annotations" not in p.read_text()]
    assert missing == []


def test_nothing_newer_than_python_3_8_runs() -> None:
    found = {str(p.relative_to(ROOT)): newer_than_38(p.read_text()) for p in sources()}
    assert {k: v for k, v in found.items() if v} == {}


def test_vermin_finds_nothing_newer_than_3_8() -> None:
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if vermin is None:
        pytest.fail("vermin is a test dependency (pip install -e '.[dev]')")
    res = subprocess.run([vermin, "--target=3.8-", "--violations", "--no-tips",
                          "--no-parse-comments", *(str(ROOT / d) for d in CODE)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-1000:]


@pytest.mark.parametrize(("code", "what"), [
    ("x = zip(a, b, strict=True)", "zip(strict=)"),
    ("ok = isinstance(v, int | list)", "union type"),
    ("Alias = tuple[int, str]", "tuple[...]"),
    ("R = Rows | Verdict", "union type"),
    ("m = {**a} | {'b': 1}", "dict merge"),
    ("s = name.removeprefix('x')", ".removeprefix()"),
    ("F = collections.abc.Callable[[str], bytes]", "Callable[...]"),
    ("from collections.abc import Callable\nF = Callable[[str], bytes]", "Callable[...]"),
], ids=["zip-strict", "isinstance-union", "builtin-generic", "union-alias", "dict-merge",
        "removeprefix", "abc-generic", "abc-generic-imported"])
def test_the_check_finds_what_it_must(code: str, what: str) -> None:
    (found,) = newer_than_38(code)
    assert what in found


def test_the_check_leaves_annotations_and_bit_flags_alone() -> None:
    code = ("def f(a: int | None, b: list[str]) -> dict[str, int] | None:\n"
            "    x: tuple[int, ...] = ()\n"
            "    return NLM_F_REQUEST | NLM_F_ACK | flags\n")
    assert newer_than_38(code) == []
