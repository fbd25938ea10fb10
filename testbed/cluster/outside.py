"""Traffic from outside on a running cluster: the topology's external hosts and, with
LoadBalancer services, the cloud load balancer.

`OutsideController` (bring-up step `outside`, after kube-proxy has synced):

    external hosts     each on its network behind the router (testbed.cluster.hosts)
    cloud-lb           a host on `load_balancer_network` owning every LoadBalancer
                       service's address, running HAProxy in TCP mode with the
                       configuration testbed.model.svc.haproxy renders: every node a server
                       on the node port, checked as the cloud checks it
    stats              HAProxy's `show stat` through its socket: per node, the check state
                       and the connections it was sent (what the claims record)

`set_uplink` takes a node off the underlay and back (its switch-side port down or up),
as a node failing would look from the network: its own interface keeps its addresses
and routes, so bringing the port back up restores it exactly.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from testbed.cluster.context import ClusterContext
from testbed.cluster.hosts import add_external_host
from testbed.errors import TestbedError
from testbed.kernel import netlink as nl
from testbed.kernel.files import write_whole
from testbed.model.names import underlay_intf
from testbed.model.spec import LOCAL
from testbed.model.svc import haproxy
from testbed.model.svc.outside import LB_HOST

START_WAIT_S = 10.0
CHECKS_WAIT_S = 20.0
TICK_S = 0.1


class OutsideController:
    """See the module docstring."""

    def __init__(self, cluster: ClusterContext) -> None:
        self.cluster = cluster
        self.spec = cluster.spec
        services = cluster.services.services if cluster.services is not None else ()
        self.backends = haproxy.backends(services)
        self.dir: Path | None = None
        self.socket: Path | None = None
        self.lb: Any = None  # HAProxy's process

    def start(self) -> None:
        for host in self.spec.external_hosts:
            add_external_host(self.cluster, host.name, str(host.network))
        if self.backends:
            self.start_load_balancer()

    # -- the load balancer -----------------------------------------------------------------

    def start_load_balancer(self) -> None:
        """cloud-lb, its service addresses, HAProxy; then wait for its first checks."""
        c = self.cluster
        net = self.spec.load_balancer_network
        lb = add_external_host(c, LB_HOST, str(net))
        intf = lb.link.intf1.name
        for address in sorted({b.address for b in self.backends}):
            res = c.exec_node(LB_HOST, ["ip", "addr", "add", f"{address}/{net.prefixlen}",
                                        "dev", intf])
            if not res.ok:
                raise TestbedError(f"{LB_HOST}: address {address}: {res.stderr.strip()}")
        self.dir = c.records.subdir("lb")
        self.socket = self.dir / "haproxy.sock"
        config = self.dir / "haproxy.cfg"
        nodes = [(n.name, str(n.underlay_ip.ip)) for n in c.plan.nodes]
        write_whole(config, haproxy.render(c.services.services, nodes, str(self.socket)))
        check = c.exec_node(LB_HOST, ["haproxy", "-c", "-q", "-f", str(config)])
        if not check.ok:
            raise TestbedError(f"HAProxy refuses {config}: "
                               f"{(check.stderr or check.stdout).strip()[:400]}")
        c.progress(f"load balancer: HAProxy on {LB_HOST} for "
                   f"{len(self.backends)} service port(s), {len(nodes)} nodes each")
        with open(self.dir / "haproxy.log", "ab") as log:
            self.lb = c.popen_node(LB_HOST, ["haproxy", "-db", "-f", str(config)],
                                   stdout=log, stderr=log)
        deadline = time.monotonic() + START_WAIT_S
        while not self.socket.exists():
            if self.lb.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "haproxy.log").read_text(errors="replace")[-400:]
                raise TestbedError(f"HAProxy did not start on {LB_HOST}: {tail.strip()}")
            time.sleep(TICK_S)
        self.wait_checks()

    def stats(self) -> list[dict[str, str]]:
        """HAProxy's servers now (`show stat`): pxname, svname, status, stot, ..."""
        if self.socket is None:
            raise TestbedError("this cluster has no load balancer (no LoadBalancer service)")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(self.socket))
            sock.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return haproxy.parse_stat(data.decode(errors="replace"))

    def expected_up(self) -> dict[str, set[str]]:
        """Per backend, the nodes its checks should pass: for Local, the nodes with a
        ready local endpoint; for Cluster, every node whose kube-proxy runs."""
        view = self.cluster.services.view or ()
        running = {n for n, p in self.cluster.services.proxies.items() if p.poll() is None}
        out = {}
        for b in self.backends:
            if b.policy == LOCAL:
                sps = [sp for sp in view if f"{sp.namespace}/{sp.name}" == b.service
                       and sp.port == b.port and sp.protocol == "TCP"]
                out[b.name] = {e.node for sp in sps for e in sp.ready_endpoints()} & running
            else:
                out[b.name] = set(running)
        return out

    def up_now(self) -> dict[str, set[str]]:
        """Per backend, the nodes HAProxy sends to now."""
        out: dict[str, set[str]] = {b.name: set() for b in self.backends}
        for row in self.stats():
            if row.get("status", "").startswith("UP") and row.get("pxname") in out:
                out[row["pxname"]].add(row["svname"])
        return out

    def wait_checks(self, timeout_s: float = CHECKS_WAIT_S) -> bool:
        """Until HAProxy's view of every backend is what the nodes' health says it
        should be; whether it got there (a warning says where not)."""
        deadline = time.monotonic() + timeout_s
        while True:
            want, have = self.expected_up(), self.up_now()
            if want == have:
                return True
            if time.monotonic() > deadline:
                self.cluster.progress("warning: load balancer checks not settled: " + "; ".join(
                    f"{b}: up {sorted(have[b])}, expected {sorted(want[b])}"
                    for b in want if want[b] != have.get(b)))
                return False
            time.sleep(TICK_S)


def switch_port(cluster: ClusterContext, node: str) -> str:
    """The underlay bridge's port of a node's link (in the machine's namespace)."""
    intf = cluster.host(node).intf(underlay_intf(node))
    link = intf.link
    other = link.intf2 if link.intf1 is intf else link.intf1
    return str(other.name)


def set_uplink(cluster: ClusterContext, node: str, up: bool) -> None:
    """Take a node off the underlay (its switch port down) or put it back."""
    cluster.node_plan(node)
    with nl.RtnlSocket() as rtnl:
        rtnl.request([nl.link_set(switch_port(cluster, node), up=up)],
                     [f"{node}'s underlay port {'up' if up else 'down'}"])
