"""The claims table: {claim: statement} in the articles' order (claims.csv and the report
follow it), derived from the registry, where each claim is an experiment whose class
carries its name and statement (experiments/framework/base.py's `Claim`). Nothing is declared here.

The verdicts themselves are experiments/framework/verdicts.py's; they are re-exported here for
the tests and tools that import them from this module. No experiment imports this module
(it imports them all, through the registry).
"""

from __future__ import annotations

from experiments.framework.base import CLAIM
from experiments.framework.verdicts import (
    CONFIRMED,
    ERROR,
    NOT_APPLICABLE,
    REFUTED,
    VERDICTS,
    ClaimResult,
    error,
    judge,
    not_applicable,
)
from experiments.registry import ARTICLE_ORDER

CLAIMS: dict[str, str] = {e.name: e.statement for e in ARTICLE_ORDER  # type: ignore[attr-defined]
                          if e.kind == CLAIM}

__all__ = ["CLAIMS", "CONFIRMED", "ERROR", "NOT_APPLICABLE", "REFUTED", "VERDICTS",
           "ClaimResult", "error", "judge", "not_applicable"]
