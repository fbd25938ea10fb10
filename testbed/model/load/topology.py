"""Topology files -> validated `ClusterSpec` (testbed.model.spec). Pure.

A spec is refused before anything is created, with a `SpecError` that names the file,
the field (as a path such as ``nodes[1].pods[0].name``) and what is wrong, on one line.
The rules every cluster shares are here; a pod network adds its own (`PodNetwork.check`).

Hostile input gets the same treatment as a typo, quickly: only regular files of at most
`MAX_FILE_BYTES` are read (a FIFO or /dev/zero is refused before reading), YAML aliases
and duplicate keys are refused, nesting is bounded, counts are checked before anything is
expanded, and no message quotes more than a few dozen characters of the input.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any

from testbed.errors import quote as show
from testbed.model.links import MAX_RATE_MBIT, LinkSpec
from testbed.model.load import outside as load_outside
from testbed.model.load import services as load_services
from testbed.model.load.reader import Reader, kind_of
from testbed.model.names import (
    MAX_NODE_NAME,
    MAX_RACKS,
    PREFIX,
    ROUTER,
    UNDERLAY_SWITCHES,
    pod_netns_name,
)
from testbed.model.podnet import POD_NETWORKS, pod_network
from testbed.model.spec import (
    DEFAULT_COMMAND,
    DEFAULT_KUBE_PROXY_MODE,
    DEFAULT_NODE_CIDR_PREFIX,
    DEFAULT_NON_MASQUERADE_CIDR,
    DEFAULT_POD_NETWORK,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_UNDERLAY,
    DEFAULT_UNDERLAY_SWITCH,
    ClusterSpec,
    ContainerSpec,
    NodeSpec,
    PodSpec,
    RackSpec,
)

MAX_CLUSTER_NAME = 40
MAX_POD_NAME = 40
# Far beyond what one machine runs (5000 pods take ~2.7 GB), small enough to check fast.
MAX_NODES = 1000
MAX_PODS = 100_000
MAX_CONTAINERS = 64
MAX_COMMAND_WORDS = 1000
# Names the cluster uses for itself: no node or pod may take them.
RESERVED_NAMES = {ROUTER}
TOP_KEYS = {
    "name", "description", "cluster_cidr", "node_cidr_prefix", "underlay",
    "non_masquerade_cidr", "nodes", "pod_network", "underlay_switch",
    "service_cidr", "kube_proxy_mode", "services", "external_hosts", "load_balancer_network",
    "ingresses", "racks", "links", "cpu",
}
NODE_KEYS = {"name", "pods", "pod_cidr", "rack", "uplink", "cpu"}
LINK_KEYS = {"rate_mbit", "loss_pct", "delay_ms", "jitter_ms"}
RACK_KEYS = {"name", "underlay"}
POD_KEYS = {"name", "containers", "labels", "readinessProbe"}
CONTAINER_KEYS = {"name", "command", "ports"}

def parse_spec(data: Any, source: str = "") -> ClusterSpec:
    """Validate a decoded topology document and build its spec (SpecError if invalid)."""
    r = Reader(source)
    if data is None:
        raise r.fail("(top level)", "the file is empty")
    top = r.mapping(data, "", TOP_KEYS)
    r.require(top, "", "name", "cluster_cidr", "nodes")
    name = r.name(top["name"], "name", MAX_CLUSTER_NAME)
    description = top.get("description", "")
    if not isinstance(description, str):
        raise r.fail("description", f"must be a string, got {kind_of(description)}")
    cluster_cidr = r.network(top["cluster_cidr"], "cluster_cidr")
    underlay = r.network(top.get("underlay", DEFAULT_UNDERLAY), "underlay")
    # a destination range: 0.0.0.0/0 (never masquerade) is a real setting
    nmc = r.network(top.get("non_masquerade_cidr", DEFAULT_NON_MASQUERADE_CIDR),
                    "non_masquerade_cidr", special_ok=True)
    prefix = r.integer(top.get("node_cidr_prefix", DEFAULT_NODE_CIDR_PREFIX),
                       "node_cidr_prefix", cluster_cidr.prefixlen, 30)
    mode = top.get("pod_network", DEFAULT_POD_NETWORK)
    if not isinstance(mode, str) or mode not in POD_NETWORKS:
        raise r.fail("pod_network", f"{show(mode)} is not one of {', '.join(POD_NETWORKS)}")
    switch = top.get("underlay_switch", DEFAULT_UNDERLAY_SWITCH)
    if not isinstance(switch, str) or switch not in UNDERLAY_SWITCHES:
        raise r.fail("underlay_switch", f"{show(switch)} is not one of "
                     f"{', '.join(UNDERLAY_SWITCHES)}")
    raw_nodes = r.sequence(top["nodes"], "nodes", " of nodes", MAX_NODES)
    if not raw_nodes:
        raise r.fail("nodes", "must list at least one node")
    service_cidr = r.network(top.get("service_cidr", DEFAULT_SERVICE_CIDR), "service_cidr")
    proxy_mode = load_services.kube_proxy_mode(
        r, top.get("kube_proxy_mode", DEFAULT_KUBE_PROXY_MODE))
    racks = _racks(r, top)
    if racks:
        underlay = racks[0].underlay
    links, _ = _link(r, top["links"], "links") if "links" in top else (LinkSpec(), set())
    cpu = _cpu(r, top["cpu"], "cpu") if "cpu" in top else None
    spec = ClusterSpec(
        name=name, description=description, cluster_cidr=cluster_cidr,
        nodes=_nodes(r, raw_nodes, {k.name for k in racks}, links, cpu), links=links, cpu=cpu,
        node_cidr_prefix=prefix,
        underlay=underlay, racks=racks,
        non_masquerade_cidr=nmc, pod_network=mode, underlay_switch=switch,
        service_cidr=service_cidr, kube_proxy_mode=proxy_mode, source=source,
    )
    _check_names(r, spec)
    _check_addressing(r, spec)
    raw_services = r.sequence(top.get("services", []), "services", " of services",
                              load_services.MAX_SERVICES)
    if raw_services:  # else no service network: the range is recorded, unused, unchecked
        load_services.check_service_cidr(r, spec)  # before the services' addresses in it
        load_services.check_dns_pod_name(r, spec)
        spec = dataclasses.replace(spec, services=load_services.services(
            r, raw_services, service_cidr))
    return _outside(r, top, spec)


def _outside(r: Reader, top: dict[str, Any], spec: ClusterSpec) -> ClusterSpec:
    """Traffic from outside: ingresses, external hosts, the load balancer, host ports."""
    spec = dataclasses.replace(spec, ingresses=load_outside.ingresses(
        r, top.get("ingresses", []), spec))
    if "load_balancer_network" in top:
        spec = dataclasses.replace(spec, load_balancer_network=load_outside.
                                   load_balancer_network(r, top["load_balancer_network"], spec))
    spec = dataclasses.replace(spec, external_hosts=load_outside.external_hosts(
        r, top.get("external_hosts", []), spec))
    load_outside.check_load_balancer(r, spec)
    load_outside.check_controller_name(r, spec)
    load_outside.check_host_ports(r, spec)
    return spec


def _racks(r: Reader, top: dict[str, Any]) -> tuple[RackSpec, ...]:
    """`racks:`: underlay subnets of their own, joined by the router (instead of the one
    `underlay`)."""
    if "racks" not in top:
        return ()
    if "underlay" in top:
        raise r.fail("racks", "give either underlay (one segment) or racks, not both")
    raw = r.sequence(top["racks"], "racks", " of racks", MAX_RACKS)
    if not raw:
        raise r.fail("racks", "must list at least one rack")
    out: list[RackSpec] = []
    for i, raw_rack in enumerate(raw):
        where = f"racks[{i}]"
        rack = r.mapping(raw_rack, where, RACK_KEYS)
        r.require(rack, where, "name", "underlay")
        name = r.name(rack["name"], f"{where}.name", MAX_NODE_NAME)
        if any(k.name == name for k in out):
            raise r.fail(f"{where}.name", f"duplicate rack name '{name}'")
        net = r.network(rack["underlay"], f"{where}.underlay")
        for other in out:
            if net.overlaps(other.underlay):
                raise r.fail(f"{where}.underlay", f"{net} overlaps rack {other.name}'s "
                             f"{other.underlay}")
        out.append(RackSpec(name, net))
    return tuple(out)


def _link(r: Reader, raw: Any, where: str) -> tuple[LinkSpec, set[str]]:
    """`links:` or a node's `uplink:` (testbed.model.links), and the keys it gave."""
    link = r.mapping(raw, where, LINK_KEYS)
    rate = (r.number(link["rate_mbit"], f"{where}.rate_mbit", 0, MAX_RATE_MBIT,
                     low_open=True) if "rate_mbit" in link else None)
    loss = r.number(link.get("loss_pct", 0), f"{where}.loss_pct", 0, 100)
    if loss == 100:
        raise r.fail(f"{where}.loss_pct", "100 % loss is no link: take the node off the "
                     "underlay instead (`uplink <node> down`)")
    delay = r.number(link.get("delay_ms", 0), f"{where}.delay_ms", 0, 10_000)
    jitter = r.number(link.get("jitter_ms", 0), f"{where}.jitter_ms", 0, 10_000)
    if jitter and not delay:
        raise r.fail(f"{where}.jitter_ms", "jitter needs a delay_ms to vary around")
    return LinkSpec(rate, loss, delay, jitter), set(link)


def _cpu(r: Reader, raw: Any, where: str) -> float:
    """`cpu:` at the top or on a node: a fraction of the machine (testbed.model.cpu)."""
    return r.number(raw, where, 0, 1, low_open=True)


def _nodes(r: Reader, raw_nodes: list[Any], racks: set[str],
           links: LinkSpec, cpu: float | None = None) -> tuple[NodeSpec, ...]:
    """Every node with its pods (named pod-1, pod-2, ... across the cluster when counted),
    each in its rack when there are racks, its uplink the default `links` with its own
    `uplink:` fields over it, its CPU share its own `cpu:` or the default."""
    nodes: list[NodeSpec] = []
    pods_so_far = 0
    for i, raw in enumerate(raw_nodes):
        where = f"nodes[{i}]"
        node = r.mapping(raw, where, NODE_KEYS)
        if "name" not in node:
            raise r.fail(f"{where}.name", "is required")
        node_name = r.name(node["name"], f"{where}.name", MAX_NODE_NAME)
        if node_name in RESERVED_NAMES:
            raise r.fail(f"{where}.name", f"'{node_name}' is reserved for the router")
        if node_name.startswith(f"{PREFIX}-"):
            raise r.fail(f"{where}.name", f"'{node_name}': names starting with '{PREFIX}-' are "
                         "the testbed's own (its underlay bridge and namespaces)")
        if any(n.name == node_name for n in nodes):
            raise r.fail(f"{where}.name", f"duplicate node name '{node_name}'")
        pod_cidr = r.network(node["pod_cidr"], f"{where}.pod_cidr") if "pod_cidr" in node else None
        pods = _pods(r, node.get("pods", 0), f"{where}.pods", pods_so_far)
        pods_so_far += len(pods)
        rack = node.get("rack", "")
        if racks and "rack" not in node:
            raise r.fail(f"{where}.rack", f"is required with racks ({', '.join(sorted(racks))})")
        if rack and not racks:
            raise r.fail(f"{where}.rack", "needs a `racks:` list at the top level")
        if racks and rack not in racks:
            raise r.fail(f"{where}.rack", f"{show(rack)} is not one of {', '.join(sorted(racks))}")
        uplink = links
        if "uplink" in node:
            own, given = _link(r, node["uplink"], f"{where}.uplink")
            uplink = links.merged(own, frozenset(given))
        own_cpu = _cpu(r, node["cpu"], f"{where}.cpu") if "cpu" in node else cpu
        nodes.append(NodeSpec(node_name, pods, pod_cidr, rack, uplink, own_cpu))
    return tuple(nodes)


def _pods(r: Reader, raw: Any, where: str, before: int) -> tuple[PodSpec, ...]:
    """A node's pods, given as a count or a list; `before`: pods on the nodes before it.
    The count is checked before any pod is made."""
    if isinstance(raw, bool) or not isinstance(raw, (int, list)):
        raise r.fail(where, f"must be a count or a list of pods, got {kind_of(raw)}")
    if isinstance(raw, int):
        if raw < 0:
            raise r.fail(where, f"{show(raw)} is negative")
        if before + raw > MAX_PODS:
            raise r.fail(where, f"{show(raw)} pods make more than {MAX_PODS} in the cluster")
        return tuple(PodSpec(name=f"pod-{before + j + 1}") for j in range(raw))
    r.sequence(raw, where, " of pods", MAX_PODS - before)
    pods = []
    for j, raw_pod in enumerate(raw):
        pwhere = f"{where}[{j}]"
        pod = r.mapping({"name": raw_pod} if isinstance(raw_pod, str) else raw_pod, pwhere,
                        POD_KEYS)
        pod_name = r.name(pod.get("name", f"pod-{before + j + 1}"), f"{pwhere}.name",
                          MAX_POD_NAME)
        pods.append(PodSpec(
            pod_name, _containers(r, pod.get("containers", []), pwhere),
            labels=load_services.labels(r, pod.get("labels", {}), f"{pwhere}.labels"),
            readiness=(load_services.readiness(r, pod["readinessProbe"],
                                               f"{pwhere}.readinessProbe")
                       if "readinessProbe" in pod else None),
        ))
    return tuple(pods)


def _containers(r: Reader, raw: Any, pwhere: str) -> tuple[ContainerSpec, ...]:
    r.sequence(raw, f"{pwhere}.containers", "", MAX_CONTAINERS)
    out: list[ContainerSpec] = []
    for k, raw_c in enumerate(raw):
        cwhere = f"{pwhere}.containers[{k}]"
        c = r.mapping(raw_c, cwhere, CONTAINER_KEYS)
        cname = r.name(c.get("name", f"c{k + 1}"), f"{cwhere}.name", MAX_POD_NAME)
        if any(x.name == cname for x in out):
            raise r.fail(f"{cwhere}.name", f"duplicate container name '{cname}'")
        command = c.get("command", list(DEFAULT_COMMAND))
        if isinstance(command, str):
            try:
                command = shlex.split(command)
            except ValueError as exc:  # an unbalanced quote, a trailing backslash
                raise r.fail(f"{cwhere}.command", f"cannot be split into words ({exc}); "
                             "quote it as a shell would, or give a list") from None
        if (not isinstance(command, list) or not command
                or not all(isinstance(a, str) for a in command)):
            raise r.fail(f"{cwhere}.command", "must be a non-empty string or list of strings")
        if len(command) > MAX_COMMAND_WORDS or any("\0" in a for a in command):
            raise r.fail(f"{cwhere}.command", f"must have at most {MAX_COMMAND_WORDS} words, "
                         "none with a NUL character")
        ports = (load_outside.container_ports(r, c["ports"], f"{cwhere}.ports")
                 if "ports" in c else ())
        out.append(ContainerSpec(cname, tuple(command), ports))
    return tuple(out)


def _check_names(r: Reader, spec: ClusterSpec) -> None:
    """Pods, nodes and the router share one name space (the CLI and look-ups take any
    of them), and every pod's machine-wide netns name must be its own."""
    taken = {**{n.name: f"node {n.name}" for n in spec.nodes}, ROUTER: "the router"}
    seen: dict[str, str] = {}
    netns: dict[str, str] = {}
    for i, node in enumerate(spec.nodes):
        for j, pod in enumerate(node.pods):
            where = f"nodes[{i}].pods[{j}].name"
            if pod.name in taken:
                raise r.fail(where, f"'{pod.name}' is the name of {taken[pod.name]}; pods, "
                             "nodes and the router need names of their own")
            if pod.name in seen:
                raise r.fail(where, f"duplicate pod name '{pod.name}' (also on {seen[pod.name]})")
            seen[pod.name] = node.name
            ns_name = pod_netns_name(node.name, pod.name)
            if ns_name in netns:
                raise r.fail(where, f"pod '{pod.name}' on node '{node.name}' would get the "
                             f"network namespace name '{ns_name}' of {netns[ns_name]}")
            netns[ns_name] = f"pod '{pod.name}' on node '{node.name}'"


def _check_addressing(r: Reader, spec: ClusterSpec) -> None:
    """Cross-field rules every pod network shares, then the pod network's own."""
    available = 2 ** (spec.node_cidr_prefix - spec.cluster_cidr.prefixlen)
    if len(spec.nodes) > available:
        raise r.fail("nodes", f"{len(spec.nodes)} nodes do not fit: cluster_cidr "
                     f"{spec.cluster_cidr} holds {available} /{spec.node_cidr_prefix} pod CIDRs")
    segments = [(f"racks[{i}].underlay", k.name, k.underlay) for i, k in enumerate(spec.racks)]
    for where, rack, net in segments or [("underlay", "", spec.underlay)]:
        on = sum(1 for n in spec.nodes if n.rack == rack)
        hosts = net.num_addresses - 2
        if on + 1 > hosts:
            raise r.fail(where, f"{net} holds {hosts} addresses; the router and {on} nodes "
                         f"need {on + 1}")
        if net.overlaps(spec.cluster_cidr):
            raise r.fail(where, f"{net} overlaps cluster_cidr {spec.cluster_cidr}")
    pod_network(spec.pod_network).check(spec, r.fail)
