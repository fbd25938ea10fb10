"""What the Services claims read, parsed: the client's per-connection lines, the servers'
access logs, conntrack's table, tcpdump's text, and an equivalence test of an even split
(each share within a margin; a chi-square test could only fail to reject evenness).
Pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# python3 -m http.server's access log: `10.0.0.3 - - [date] "GET /?probe=tag-17 HTTP/1.0" 200 -`
ACCESS = re.compile(r'^(\d+\.\d+\.\d+\.\d+) - - \[[^\]]*\] '
                    r'"GET /[^ ?]*\?probe=([\w.-]+)-(\d+) HTTP')
IP = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")


@dataclass(frozen=True)
class Connection:
    """One connection the client made: when, whether an HTTP answer came, how long."""

    seq: int
    t: float  # wall-clock start, seconds since the epoch
    ok: bool
    ms: float
    error: str = ""
    status: int = 0  # the HTTP status, when an answer came


def parse_client(text: str) -> tuple[str | None, list[Connection]]:
    """The client probe's output: the address the name resolved to, and each connection."""
    resolved: str | None = None
    out = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if "resolved" in d:
            resolved = d["resolved"]
        elif "seq" in d:
            out.append(Connection(int(d["seq"]), float(d["t"]), bool(d["ok"]), float(d["ms"]),
                                  str(d.get("error", "")), int(d.get("status", 0))))
    return resolved, out


def parse_access_log(text: str, tag: str) -> dict[int, str]:
    """seq -> the client address a server logged, for the requests of probe `tag`."""
    out = {}
    for line in text.splitlines():
        m = ACCESS.match(line)
        if m and m.group(2) == tag:
            out[int(m.group(3))] = m.group(1)
    return out


@dataclass(frozen=True)
class Flow:
    """A conntrack entry: the original direction and the reply direction."""

    protocol: str
    orig_src: str
    orig_dst: str
    orig_dport: int
    reply_src: str
    reply_dst: str
    reply_sport: int


def parse_conntrack(text: str) -> list[Flow]:
    """`conntrack -L` lines: the first src/dst/sport/dport are the original direction,
    the second ones the reply direction."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        orig: dict[str, str] = {}
        reply: dict[str, str] = {}
        for word in words:
            key, eq, value = word.partition("=")
            if eq and key in ("src", "dst", "sport", "dport"):
                (reply if key in orig else orig).setdefault(key, value)
        if {"src", "dst"} <= set(orig) and {"src", "dst"} <= set(reply):
            out.append(Flow(words[0], orig["src"], orig["dst"], int(orig.get("dport", 0)),
                            reply["src"], reply["dst"], int(reply.get("sport", 0))))
    return out


def addresses_seen(tcpdump_text: str) -> dict[str, int]:
    """How many packets each IPv4 address appears in (`tcpdump -n -r` text, one packet a
    line; an address with a port, 10.0.0.3.80, counts as 10.0.0.3)."""
    counts: dict[str, int] = {}
    for line in tcpdump_text.splitlines():
        found = set()
        for word in line.replace(">", " ").replace(":", " ").replace(",", " ").split():
            parts = word.split(".")
            if len(parts) >= 4 and all(p.isdigit() for p in parts[:4]):
                found.add(".".join(parts[:4]))
        for ip in found:
            counts[ip] = counts.get(ip, 0) + 1
    return counts


EVEN, UNEVEN, UNDECIDED = "even", "uneven", "undecided"


@dataclass(frozen=True)
class Share:
    """One server's share of the connections, with its Clopper-Pearson interval."""

    server: str
    count: int
    share: float
    low: float
    high: float


def clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a proportion k/n at `level`:
    it never undercovers, which matters when the verdict rests on it."""
    from scipy.stats import beta

    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"a proportion needs 0 <= k <= n and n > 0, not {k}/{n}")
    tail = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def even_split(counts: dict[str, int], margin: float,
               alpha: float) -> tuple[str, list[Share]]:
    """Is the split of connections over k servers even, within `margin` of 1/k each?

    An equivalence test, not a failure to reject evenness (which a lopsided 66/34 split
    of 100 passes): each share's exact interval at 1 - 2 alpha / k (two one-sided tests
    at `alpha`, Bonferroni over the k shares) must lie inside [1/k - margin, 1/k + margin]
    for `even`; a share whose whole interval lies outside that band is `uneven`; anything
    else is `undecided` (too few connections to tell: more would)."""
    k, n = len(counts), sum(counts.values())
    if k < 2 or n < 1:
        raise ValueError("an even split needs at least two servers and one connection")
    level = 1 - 2 * alpha / k
    lo, hi = 1 / k - margin, 1 / k + margin
    shares = [Share(s, c, c / n, *clopper_pearson(c, n, level)) for s, c in counts.items()]
    if all(lo <= s.low and s.high <= hi for s in shares):
        return EVEN, shares
    if any(s.high < lo or s.low > hi for s in shares):
        return UNEVEN, shares
    return UNDECIDED, shares
