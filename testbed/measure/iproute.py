"""`ip -j ...` output, read strictly. Pure.

A read that failed is not an empty table: `json.loads(res.stdout or "[]")` turned an
`ip` that could not run (a namespace gone, a node stopped) into "no address, no route",
and a claim about absence was then confirmed on nothing. Here a failed or unparsable read
raises, so the claim's verdict is `error` with the reason.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class Result(Protocol):
    """What a command run in a node or pod gives back (testbed.kernel.procs.ExecResult)."""

    returncode: int
    stdout: str
    stderr: str


class ReadError(RuntimeError):
    """An `ip -j` read that failed or printed something other than a JSON list."""


def ip_json(res: Result, what: str) -> list[dict[str, Any]]:
    """The JSON list `ip -j` printed for `what` (words for the error): ReadError when the
    command failed or its output is not a list of objects."""
    if res.returncode != 0:
        raise ReadError(f"{what}: ip exited {res.returncode}: "
                        f"{(res.stderr or res.stdout).strip()[:300]}")
    try:
        data = json.loads(res.stdout)
    except ValueError:
        raise ReadError(f"{what}: ip printed no JSON: {res.stdout.strip()[:300]!r}") from None
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise ReadError(f"{what}: ip printed {type(data).__name__}, not a list of objects")
    return data
