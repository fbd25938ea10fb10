"""The cloud load balancer's configuration: HAProxy in TCP mode, as a cloud provider's
controller configures its L4 load balancer for every LoadBalancer service. Pure.

For each port of each LoadBalancer service: a frontend on the service's external address
and port, a backend with every node as a server on the port's node port, and a health
check per node, as the cloud controller sets them up (k8s.io/cloud-provider's
service controller gives the provider every node; the provider checks them):

    externalTrafficPolicy: Local     HTTP GET /healthz on the service's health-check node
                                     port, answered by the node's kube-proxy: 200 while the
                                     node has a ready local endpoint, 503 otherwise
    externalTrafficPolicy: Cluster   HTTP GET /healthz on kube-proxy's own health port
                                     (10256), as providers check nodes since KEP-3836

Where it differs from a cloud's: HAProxy is a proxy, so a node sees the connection come
from the load balancer's address (as behind AWS's classic ELB), not from the client (as
behind GCP's pass-through network load balancer); connections are spread round-robin,
not by a hash of the 5-tuple; checks run every second (clouds: every 5-10 s), so an
experiment waits seconds, not minutes. No retries and no redispatch: a connection sent
to a node that died before its checks failed is lost, as it is in a cloud.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from testbed.model.spec import LOAD_BALANCER, ServiceSpec
from testbed.model.svc.outside import PROXY_HEALTH_PORT, needs_health_check

CHECK_INTERVAL_S = 1.0
CHECK_FALL = 2  # failed checks in a row that take a node out
CHECK_RISE = 2  # passed checks in a row that bring it back
CONNECT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Backend:
    """One HAProxy backend: a service port, its nodes and how they are checked."""

    name: str  # HAProxy's name for the frontend and backend: ns.name.port
    service: str  # ns/name
    address: str  # the service's external address
    port: int
    node_port: int
    check_port: int
    policy: str


def backends(services: Sequence[ServiceSpec]) -> list[Backend]:
    """A backend per TCP port of each (resolved) LoadBalancer service."""
    out = []
    for svc in services:
        if svc.type != LOAD_BALANCER or svc.load_balancer_ip is None:
            continue
        check = (svc.health_check_node_port if needs_health_check(svc)
                 and svc.health_check_node_port else PROXY_HEALTH_PORT)
        for p in svc.ports:
            if p.protocol != "TCP" or not p.node_port:
                continue  # HAProxy carries TCP; UDP load balancers are not emulated
            out.append(Backend(f"{svc.namespace}.{svc.name}.{p.port}", svc.key,
                               str(svc.load_balancer_ip), p.port, p.node_port, check,
                               svc.external_traffic_policy))
    return out


def render(services: Sequence[ServiceSpec], nodes: Sequence[tuple[str, str]],
           stats_socket: str) -> str:
    """haproxy.cfg for the load balancer: `nodes` are (name, underlay address)."""
    lines = [
        "# The cloud load balancer (rendered by testbed.model.svc.haproxy)",
        "global",
        "    log stdout format iso local0 info",
        f"    stats socket {stats_socket} mode 600 level admin",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option tcplog",
        "    option dontlognull",
        "    option log-health-checks",
        f"    timeout connect {int(CONNECT_TIMEOUT_S * 1000)}ms",
        "    timeout client 60s",
        "    timeout server 60s",
        "    retries 0",
    ]
    for b in backends(services):
        lines += [
            "",
            f"# {b.service} port {b.port}: every node on node port {b.node_port}, checked "
            f"on {b.check_port} (externalTrafficPolicy {b.policy})",
            f"frontend {b.name}",
            f"    bind {b.address}:{b.port}",
            f"    default_backend {b.name}",
            "",
            f"backend {b.name}",
            "    balance roundrobin",
            "    option httpchk GET /healthz",
            "    http-check expect status 200",
            f"    default-server check inter {int(CHECK_INTERVAL_S * 1000)}ms "
            f"fall {CHECK_FALL} rise {CHECK_RISE} port {b.check_port}",
            *(f"    server {name} {ip}:{b.node_port}" for name, ip in nodes),
        ]
    return "\n".join(lines) + "\n"


def parse_stat(csv_text: str) -> list[dict[str, str]]:
    """HAProxy's `show stat` (CSV with a '# ' header) as rows of its servers only."""
    lines = [ln for ln in csv_text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("# "):
        return []
    header = lines[0][2:].split(",")
    rows = [dict(zip(header, ln.split(","))) for ln in lines[1:]]
    return [r for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND")]
