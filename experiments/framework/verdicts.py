"""The verdicts experiments give the claims (the seed article's, those of the series'
second part, Services, and third part, traffic from outside, and those about other pod
networks). Pure.

Each claim is an experiment of its own whose class (experiments/framework/base.py's
`Claim`) carries its name and statement; defining the class declares them here
(`declare`), so a verdict can name only a claim that exists and claims.csv can give its
statement. The claims table in the articles' order is experiments/claims.py's `CLAIMS`,
read from the registry.

A verdict is `confirmed` or `refuted` from real measurements, `error` (with the reason)
when the experiment could not run or measured nothing, or `not applicable` (with the
reason) when the topology lacks what the claim needs (experiments/framework/needs.py): never a
silent pass, and never `refuted` for a claim the topology could not show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# {claim: statement} of every claim class defined so far (experiments/framework/base.py's `Claim`)
_STATEMENTS: dict[str, str] = {}


def declare(name: str, statement: str) -> None:
    """Called as a claim's class is defined: its name is now one a verdict may name."""
    if _STATEMENTS.get(name, statement) != statement:
        raise ValueError(f"two claims are called {name!r}")
    _STATEMENTS[name] = statement


CONFIRMED, REFUTED, ERROR, NOT_APPLICABLE = "confirmed", "refuted", "error", "not applicable"
VERDICTS = (CONFIRMED, REFUTED, ERROR, NOT_APPLICABLE)


@dataclass(frozen=True)
class ClaimResult:
    """One claim's verdict, the evidence in words, and the key numbers behind it."""

    claim: str
    verdict: str
    evidence: str
    numbers: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.claim not in _STATEMENTS:
            raise ValueError(f"unknown claim {self.claim!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def row(self) -> dict[str, str]:
        return {
            "claim": self.claim,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "numbers": "; ".join(f"{k}={_fmt(v)}" for k, v in self.numbers.items()),
            "statement": _STATEMENTS[self.claim],
        }


def judge(claim: str, checks: Mapping[str, bool], evidence: str,
          numbers: Mapping[str, float] | None = None) -> ClaimResult:
    """`confirmed` when every named check holds; otherwise `refuted`, naming the failed ones."""
    failed = [name for name, ok in checks.items() if not ok]
    if not checks:
        raise ValueError("a verdict needs at least one check")
    verdict = "refuted" if failed else "confirmed"
    text = evidence if not failed else f"{evidence} [failed: {', '.join(failed)}]"
    return ClaimResult(claim, verdict, text, dict(numbers or {}))


def error(claim: str, reason: str) -> ClaimResult:
    return ClaimResult(claim, ERROR, reason.replace("\n", " ").strip()[:500])


def not_applicable(claim: str, reason: str) -> ClaimResult:
    """The topology lacks what the claim needs (`reason` says what): nothing was judged."""
    return ClaimResult(claim, NOT_APPLICABLE, reason.replace("\n", " ").strip()[:500])


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
