"""The commands kube-proxy's modes run on their node: iptables' Ensure* helpers, a
table's chains, chains removed, sysctls, conntrack entries of endpoints that went away.

Shared by the modes' plug-ins (testbed.proxy.modes); each runs inside the node's network
namespace, as the kube-proxy process that calls it.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Collection, Mapping, Sequence
from typing import Callable

from testbed.model.svc.plan import ServicePort

IPTABLES_WAIT = ["-w", "5"]


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)


def must(argv: list[str], stdin: str | None = None) -> str:
    res = run(argv, stdin)
    if res.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv[:3])}: {res.stderr.strip()[:400]}")
    return res.stdout


def ensure_chain(table: str, chain: str) -> None:
    """EnsureChain: create it unless it exists."""
    if run(["iptables", *IPTABLES_WAIT, "-t", table, "-S", chain]).returncode != 0:
        must(["iptables", *IPTABLES_WAIT, "-t", table, "-N", chain])


def ensure_rule(table: str, chain: str, rule: str, position: str = "I") -> None:
    """EnsureRule: add the rule unless `-C` finds it (at the top, or appended)."""
    args = shlex.split(rule)
    if run(["iptables", *IPTABLES_WAIT, "-t", table, "-C", chain, *args]).returncode == 0:
        return
    where = ["-I", chain, "1"] if position == "I" else ["-A", chain]
    must(["iptables", *IPTABLES_WAIT, "-t", table, *where, *args])


def delete_rule(table: str, chain: str, rule: str) -> None:
    args = shlex.split(rule)
    while run(["iptables", *IPTABLES_WAIT, "-t", table, "-D", chain, *args]).returncode == 0:
        pass


def save_chains(table: str) -> list[str]:
    """The chains of a table now (from iptables-save)."""
    out = run(["iptables-save", "-t", table]).stdout
    return [line[1:].split()[0] for line in out.splitlines() if line.startswith(":")]


def remove_chains(owned: Mapping[str, Collection[str]],
                  also: Callable[[str], bool] = lambda chain: False) -> None:
    """Flush and delete, table by table in one iptables-restore each, the chains of
    `owned` that exist (and any other for which `also` says yes): a mode's --cleanup."""
    for table, chains in owned.items():
        present = [c for c in save_chains(table) if c in chains or also(c)]
        if present:
            payload = "\n".join([f"*{table}", *(f":{c} - [0:0]" for c in present),
                                 *(f"-X {c}" for c in present), "COMMIT"]) + "\n"
            must(["iptables-restore", *IPTABLES_WAIT, "--noflush"], payload)


def write_sysctl(key: str, value: str) -> None:
    with open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
        f.write(value)


class StaleUdp:
    """kube-proxy deletes the conntrack entries of UDP endpoints that went away, or
    replies would keep flowing to them (`conntrack -D --orig-dst VIP --dst-nat IP`)."""

    def __init__(self) -> None:
        self.previous: dict[str, set[str]] = {}  # UDP service port -> endpoint IPs

    def clear(self, services: Sequence[ServicePort]) -> None:
        now: dict[str, set[str]] = {}
        for sp in services:
            if sp.protocol == "UDP":
                now[f"{sp.cluster_ip}:{sp.port}"] = {e.ip for e in sp.ready_endpoints()}
        for key, ips in self.previous.items():
            for ip in ips - now.get(key, set()):
                run(["conntrack", "-D", "--orig-dst", key.split(":")[0], "--dst-nat", ip,
                     "-p", "udp"])
        self.previous = now
