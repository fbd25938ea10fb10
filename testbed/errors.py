"""Exceptions the testbed raises on purpose, each with a message a user can act on.

The command-line entry points catch these and print one line (no traceback) with
exit status 2 for bad input and 1 for a failure of the machine or a tool.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxdict, _QUOTE.maxlist, _QUOTE.maxtuple = 2, 3, 3, 3
_QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlong = 40, 40, 40


def quote(value: Any) -> str:
    """A bounded quotation of untrusted input: reprlib never walks more than it prints, so
    a value expanded from YAML aliases or a megabyte string costs nothing to quote."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "a number of more than 30 digits"
    return _QUOTE.repr(value)


def one_line(text: str, limit: int = 500) -> str:
    """Text fit for a one-line message: control characters (newlines among them) shown
    escaped, and at most `limit` characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TestbedError(Exception):
    """A failure the user can understand from its message alone."""

    __test__ = False  # not a pytest test class, despite the name


class SpecError(TestbedError):
    """A topology file is invalid: names the file, the field and what is wrong."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = one_line(source, 200)
        self.field = one_line(field, 200)
        self.problem = one_line(problem)
        where = f"{self.source}: " if source else ""
        super().__init__(f"{where}{self.field}: {self.problem}")


class UsageError(TestbedError):
    """Bad input other than a topology file (an --out or --resume that cannot be used):
    one line, exit status 2."""


class MissingDependencyError(TestbedError):
    """A system tool the testbed needs is not installed; names the Debian package."""


class PrivilegeError(TestbedError):
    """The operation needs root (network namespaces, bridges, netfilter)."""


class LeftoverError(TestbedError):
    """Another cluster is running, or a crashed run left state behind."""
