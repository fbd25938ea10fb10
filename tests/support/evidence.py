"""Helpers the verdict tests share: evidence with one fact changed, and "refuted by
exactly these checks". The verdicts are pure functions of evidence (experiments/*), so
each test takes a real run's evidence, turns one fact around and names what must fail."""

from __future__ import annotations

import copy
from typing import Any, Callable

from experiments.claims import ClaimResult


def refuted_by(result: ClaimResult, *checks: str) -> bool:
    """Refuted, naming exactly these failed checks (in the verdict's order)."""
    return result.verdict == "refuted" and result.evidence.endswith(
        f" [failed: {', '.join(checks)}]")


def mutated(evidence: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `evidence` with the value at a dotted path replaced."""
    e = copy.deepcopy(evidence)
    *keys, last = path.split(".")
    node = e
    for key in keys:
        node = node[key]
    node[last] = value
    return e


def at(path: str, value: Any) -> Callable[[dict], None]:
    """A change to the evidence, in place: the value at a slash-separated path (list
    indexes as numbers)."""
    *keys, last = path.split("/")

    def change(e: dict) -> None:
        d = e
        for k in keys:
            d = d[int(k)] if isinstance(d, list) else d[k]
        d[int(last) if isinstance(d, list) else last] = value
    return change
