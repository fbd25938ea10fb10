"""The seed article's claims, those of the series' second part (Services) and third part
(traffic from outside), and those about other pod networks, and the verdicts experiments
give them. Pure.

`CLAIMS` is the articles' list, in their order (claims.csv follows it); each claim is an
experiment of its own (see registry.py), whose verdict is a `ClaimResult`.

A verdict is `confirmed` or `refuted` from real measurements, `error` (with the reason)
when the experiment could not run or measured nothing, or `not applicable` (with the
reason) when the topology lacks what the claim needs (experiments/needs.py): never a
silent pass, and never `refuted` for a claim the topology could not show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CLAIMS: dict[str, str] = {
    "shared-localhost": "containers of one pod reach each other on 127.0.0.1; a container "
                        "in another pod cannot reach them that way",
    "port-conflict": "a second container in the same pod cannot bind a port the first holds; "
                     "in different pods both binds succeed",
    "pause-holds-netns": "restarting an app container keeps the pod's network namespace and "
                         "IP; ending the pause process takes the pod's network away",
    "docker0-collision": "with every node on docker0 172.17.0.0/16, cross-node traffic cannot "
                         "reach the right container; kubenet's per-node pod CIDRs reach all",
    "gateway-routes": "cross-node pod traffic depends on the router's per-node routes: "
                      "withdraw one and that node's pods are cut off from other nodes only",
    "no-masquerade-10-8": "pods reach 10.0.0.0/8 with their own source address (answers need "
                          "a return route); other destinations see the node's address",
    # the series' second part, Services (on topologies/services.yaml)
    "svc-range-separate": "the service range overlaps neither the pod nor the node ranges",
    "svc-network-absent": "the service network does not exist: no interface anywhere has an "
                          "address in it and no router has a route for it",
    "svc-dns-even-split": "a client reaches the service by name (cluster DNS) and port 80; "
                          "with two server pods each gets about half the connections",
    "svc-rewrite-on-node": "the packet is rewritten on the client's own node: the virtual IP "
                           "never appears on the underlay or at the router, and conntrack "
                           "rewrites the replies",
    "svc-userspace-proxy": "in userspace mode kube-proxy carries every connection (the server "
                           "sees the node as the source, a second connection); in iptables "
                           "mode it only writes rules and the kernel does the rest",
    "svc-kube-proxy-down": "in iptables mode traffic keeps flowing when kube-proxy dies; in "
                           "userspace mode it stops",
    "svc-readiness": "pods that fail their readiness check get no new connections until they "
                     "recover",
    # the series' third part, traffic from outside (on topologies/outside.yaml)
    "out-service-route": "service rules match on destination only: a gateway route sending "
                         "the service range to one node makes the service reachable from "
                         "outside, through that one node, and gone when it fails",
    "out-node-ip-refused": "a node's own address on the service port is refused: nothing "
                           "listens there",
    "out-nodeport": "a NodePort is open on every node; any node's address and that port "
                    "reaches a server pod, possibly on another node (one more hop)",
    "out-load-balancer": "a LoadBalancer service is a NodePort plus an external load balancer "
                         "that spreads connections over the nodes and checks their health",
    "out-lb-node-down": "when a node fails, the load balancer stops sending to it within its "
                        "health checks' interval; connections sent in between are lost",
    "out-traffic-policy": "externalTrafficPolicy Cluster: servers see a node's address and "
                          "every node forwards; Local: servers see the client's, nodes "
                          "without a server pod drop, and the health-check node port tells "
                          "the load balancer which nodes to use",
    "out-ingress": "an Ingress is an HTTP proxy in the cluster, reached through a load "
                   "balancer or NodePort, that routes by host name and path to services",
    "out-host-port": "a hostPort opens a port only on the node running the pod, with no proxy "
                     "in the path",
    # other pod networks (issue 11; topologies/flannel-*.yaml, kindnet.yaml, racks.yaml)
    "mode-host-gw-routes": "flannel host-gw reaches pods across nodes with no pod route on the "
                           "router; across racks it cannot (flanneld's error says why), while "
                           "flannel VXLAN and Calico (BGP) can",
    "mode-vxlan-mtu": "VXLAN costs 50 bytes of MTU (a don't-fragment ping of the pod MTU "
                      "crosses, one byte more does not) and wraps pod packets in UDP between "
                      "the nodes (outer node addresses, port 8472, VNI 1, inner pod addresses)",
    "mode-kindnet-no-bridge": "kindnet's pods have no bridge: each has a point-to-point veth "
                              "and a route of its own on its node",
    "mode-calico-bgp": "a Calico pod's gateway 169.254.1.1 is answered by proxy ARP with "
                       "ee:ee:ee:ee:ee:ee; routes to other nodes' blocks are learnt over BGP "
                       "(proto bird), within the convergence time measured; the router peers "
                       "as a top-of-rack router, so hosts outside reach pods",
    "mode-calico-join": "a node that joins a running Calico cluster is reachable from every "
                        "other node after the convergence time measured; one that leaves is "
                        "withdrawn from every node and the router",
}
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
        if self.claim not in CLAIMS:
            raise ValueError(f"unknown claim {self.claim!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def row(self) -> dict[str, str]:
        return {
            "claim": self.claim,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "numbers": "; ".join(f"{k}={_fmt(v)}" for k, v in self.numbers.items()),
            "statement": CLAIMS[self.claim],
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
