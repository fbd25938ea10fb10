"""Claim `shared-localhost`: containers of one pod reach each other on 127.0.0.1; a
container in another pod cannot reach them that way.

    pod A: container "server" listens on 127.0.0.1:7001; container "client" connects to
           127.0.0.1:7001 -> the server's greeting
    pod B: connects to 127.0.0.1:7001 -> refused (B's localhost is B's own)
"""

from __future__ import annotations

from collections.abc import Iterator

from experiments import probes
from experiments.base import Claim, Context, Result, Verdict, retry, two_pods
from experiments.claims import judge

PORT = 7001


class SharedLocalhost(Claim):
    """Containers of one pod share localhost; another pod's localhost is its own."""

    name = "shared-localhost"

    def run(self, ctx: Context) -> Iterator[Result]:
        c = ctx.require_cluster()
        a, b = two_pods(c)
        c.add_container(a, "server", probes.tcp_server("127.0.0.1", PORT, f"hello from {a}"))
        c.add_container(a, "client", ["sleep", "infinity"])
        try:
            same = retry(lambda: c.pod(a).exec(probes.tcp_client("127.0.0.1", PORT),
                                               container="client"), lambda r: r.ok)
            other = c.pod(b).exec(probes.tcp_client("127.0.0.1", PORT))
            ip_server = c.pod(a).exec(["ip", "-4", "-o", "addr", "show", "eth0"],
                                      container="server").stdout.split()[3]
            ip_client = c.pod(a).exec(["ip", "-4", "-o", "addr", "show", "eth0"],
                                      container="client").stdout.split()[3]
        finally:
            c.remove_container(a, "server")
            c.remove_container(a, "client")
        yield Verdict(judge(
            self.name,
            {"same pod connects": same.ok and f"hello from {a}" in same.stdout,
             "other pod refused": not other.ok and "refused" in other.stdout.lower(),
             "containers share the pod IP": ip_server == ip_client},
            f"{a}/client -> 127.0.0.1:{PORT}: {same.stdout.strip()}; "
            f"{b} -> 127.0.0.1:{PORT}: {other.stdout.strip()}; both containers of {a} "
            f"have {ip_server}",
            {"same_pod_connected": int(same.ok), "other_pod_connected": int(other.ok)},
        ))
