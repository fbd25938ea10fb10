"""Build traceroute command lines and parse their output (Debian traceroute 2.1.2, ``-n -q 1``).

A reply TTL only says how many routers a packet crossed; traceroute says *which* ones, so a
report can show the actual path a pod's packets take (gateway, router, other node).
"""

from __future__ import annotations

import ipaddress
import re

from testbed.errors import TestbedError
from testbed.measure import first_line

# " 1  10.0.0.1  0.061 ms", " 2  *", " 3  10.0.0.9  3001.2 ms !H": "%2u " then, per probe,
# " *" or " addr  x.xxx ms [!X]". Hop numbers are right-aligned to two places.
_HOP_RE = re.compile(r"^\s*(\d+)\s+(\S.*)$")


def traceroute_argv(dst: str, max_hops: int = 8, wait_s: int = 1) -> list[str]:
    """The command as an argument list (no shell): numeric, one probe a hop, short waits."""
    return ["traceroute", "-n", "-q", "1", "-w", str(wait_s), "-m", str(max_hops), dst]


def _hop_address(rest: str, line: str) -> str | None:
    """The first address that answered on a hop line; None if every probe timed out."""
    tokens = rest.split()
    for token in tokens:
        try:
            return str(ipaddress.ip_address(token))
        except ValueError:
            continue
    if all(token == "*" for token in tokens):
        return None
    raise TestbedError(f"traceroute: cannot read hop line: {line.strip()[:200]}")


def parse_traceroute(text: str) -> list[str | None]:
    """The responding address of each hop in order (None for a ``*`` hop).

    Raise TestbedError when there is no hop line at all (unknown host, no route, empty output),
    so a failed traceroute is never recorded as an empty path.
    """
    hops: list[str | None] = []
    for line in text.splitlines():
        match = _HOP_RE.match(line)
        if match is None:
            continue
        number = int(match.group(1))
        if number != len(hops) + 1:
            raise TestbedError(
                f"traceroute: hop {number} where hop {len(hops) + 1} was expected: "
                f"{line.strip()[:200]}"
            )
        hops.append(_hop_address(match.group(2), line))
    if not hops:
        first = first_line(text)
        detail = f": {first}" if first else " (empty output)"
        raise TestbedError(f"traceroute: no hop lines in output{detail}")
    return hops
