"""The parts of a topology file about traffic from outside the cluster: `external_hosts`,
`load_balancer_network`, `ingresses`, and containers' `ports` (with `hostPort`). Pure.

As in services.py, keys inside Kubernetes objects are Kubernetes' own (`hostPort`,
`pathType`, `loadBalancerIP`, ...), cluster-level keys snake_case. The checks are those
the API server (or, for host ports, the scheduler) would make, plus the testbed's own:
every network behind the router is its own, and names are unique across nodes, pods and
hosts, since the CLI looks any of them up by name.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.errors import quote as show
from testbed.model.load.reader import Reader
from testbed.model.spec import (
    DEFAULT_NAMESPACE,
    EXACT_PATH,
    LOAD_BALANCER,
    LOCAL,
    PREFIX_PATH,
    TCP,
    UDP,
    ClusterSpec,
    ContainerPort,
    ExternalHostSpec,
    IngressPath,
    IngressRule,
    IngressSpec,
)
from testbed.model.svc.outside import (
    CONTROLLER_POD,
    HOST_INDEX,
    LB_HOST,
    LB_IP_FIRST,
    NODE_PORT_RANGE,
)

MAX_EXTERNAL_HOSTS = 50
MAX_INGRESSES = 500
MAX_RULES = 100
MAX_PATHS = 100
MAX_PORTS = 100
MAX_HOST_NAME = 40
EXTERNAL_HOST_KEYS = {"name", "network"}
PORT_KEYS = {"containerPort", "hostPort", "protocol", "name"}
INGRESS_KEYS = {"name", "namespace", "rules"}
RULE_KEYS = {"host", "paths"}
PATH_KEYS = {"path", "pathType", "service", "port"}
# An Ingress rule's host: a DNS subdomain, lower case (wildcards are not emulated)
HOST_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def container_ports(r: Reader, raw: Any, where: str) -> tuple[ContainerPort, ...]:
    """A container's `ports:` (containerPort, optional hostPort, protocol)."""
    out = []
    for k, raw_port in enumerate(r.sequence(raw, where, " of ports", MAX_PORTS)):
        pwhere = f"{where}[{k}]"
        port = r.mapping(raw_port, pwhere, PORT_KEYS)
        if "containerPort" not in port:
            raise r.fail(f"{pwhere}.containerPort", "is required")
        number = r.integer(port["containerPort"], f"{pwhere}.containerPort", 1, 65535)
        host = (r.integer(port["hostPort"], f"{pwhere}.hostPort", 1, 65535)
                if "hostPort" in port else None)
        protocol = port.get("protocol", TCP)
        if protocol not in (TCP, UDP):
            raise r.fail(f"{pwhere}.protocol", f"{show(protocol)} is not one of TCP, UDP")
        out.append(ContainerPort(number, host, protocol))
    return tuple(out)


def external_hosts(r: Reader, raw: Any, spec: ClusterSpec) -> tuple[ExternalHostSpec, ...]:
    """`external_hosts:`: each on a network of its own that no cluster range overlaps."""
    out: list[ExternalHostSpec] = []
    names = _taken_names(spec)
    for i, raw_host in enumerate(r.sequence(raw, "external_hosts", " of hosts",
                                            MAX_EXTERNAL_HOSTS)):
        where = f"external_hosts[{i}]"
        host = r.mapping(raw_host, where, EXTERNAL_HOST_KEYS)
        r.require(host, where, "name", "network")
        name = r.name(host["name"], f"{where}.name", MAX_HOST_NAME)
        if name in names:
            raise r.fail(f"{where}.name", f"'{name}' is the name of {names[name]}")
        names[name] = f"external host {name}"
        network = r.network(host["network"], f"{where}.network")
        if network.prefixlen > 28:
            raise r.fail(f"{where}.network", f"{network} is too small: the host takes its "
                         f"{HOST_INDEX + 1}th address (at most /28)")
        for other, what in _ranges(spec) + [(h.network, f"the network of {h.name}")
                                            for h in out]:
            if network.overlaps(other):
                raise r.fail(f"{where}.network", f"{network} overlaps {what} {other}")
        out.append(ExternalHostSpec(name, network))
    return tuple(out)


def load_balancer_network(r: Reader, raw: Any, spec: ClusterSpec) -> IPv4Network:
    """The cloud load balancer's network behind the router (checked when one is used)."""
    network = r.network(raw, "load_balancer_network")
    if network.prefixlen > 24:
        raise r.fail("load_balancer_network", f"{network} is too small (at most /24: "
                     f"service addresses start at its {LB_IP_FIRST}th)")
    return network


def check_load_balancer(r: Reader, spec: ClusterSpec) -> None:
    """With LoadBalancer services: their network is its own, their addresses in it, the
    load balancer host's name free, health-check node ports only where Kubernetes has one."""
    lbs = [s for s in spec.services if s.type == LOAD_BALANCER]
    taken = {(p.node_port, p.protocol) for s in spec.services for p in s.ports if p.node_port}
    for i, svc in enumerate(spec.services):
        where = f"services[{i}]"
        if svc.load_balancer_ip is not None and svc.type != LOAD_BALANCER:
            raise r.fail(f"{where}.loadBalancerIP", "may only be set for LoadBalancer services")
        if svc.health_check_node_port is not None:
            if svc.type != LOAD_BALANCER or svc.external_traffic_policy != LOCAL:
                raise r.fail(f"{where}.healthCheckNodePort", "may only be set for "
                             "LoadBalancer services with externalTrafficPolicy: Local")
            if (svc.health_check_node_port, TCP) in taken:
                raise r.fail(f"{where}.healthCheckNodePort", f"{svc.health_check_node_port} "
                             "is also a node port")
            taken.add((svc.health_check_node_port, TCP))
    if not lbs and not spec.ingresses:
        return
    names = _taken_names(spec)
    if LB_HOST in names:
        where = ("external_hosts" if names[LB_HOST].startswith("external")
                 else "nodes")
        raise r.fail(where, f"'{LB_HOST}' is the load balancer's host in a cluster with "
                     f"LoadBalancer services (it is the name of {names[LB_HOST]})")
    net = spec.load_balancer_network
    for other, what in _ranges(spec, with_lb=False) + [
            (h.network, f"the network of external host {h.name}") for h in spec.external_hosts]:
        if net.overlaps(other):
            raise r.fail("load_balancer_network", f"{net} overlaps {what} {other}")
    seen: dict[IPv4Address, str] = {}
    for i, svc in enumerate(spec.services):
        ip = svc.load_balancer_ip
        if ip is None:
            continue
        if ip not in net or int(ip) - int(net.network_address) < LB_IP_FIRST \
                or ip == net.broadcast_address:
            raise r.fail(f"services[{i}].loadBalancerIP", f"{ip} is not a service address of "
                         f"load_balancer_network {net} (from its {LB_IP_FIRST}th address on)")
        if ip in seen:
            raise r.fail(f"services[{i}].loadBalancerIP", f"{ip} is also the address of "
                         f"{seen[ip]}")
        seen[ip] = svc.key


def ingresses(r: Reader, raw: Any, spec: ClusterSpec) -> tuple[IngressSpec, ...]:
    """`ingresses:`, each path naming a service of its namespace and one of its ports."""
    items = r.sequence(raw, "ingresses", " of ingresses", MAX_INGRESSES)
    if items and not spec.services:
        raise r.fail("ingresses", "need services (the ingress controller is reached through "
                     "one, and routes to them)")
    services = {s.key: s for s in spec.services}
    out: list[IngressSpec] = []
    for i, raw_ing in enumerate(items):
        where = f"ingresses[{i}]"
        ing = r.mapping(raw_ing, where, INGRESS_KEYS)
        r.require(ing, where, "name", "rules")
        name = _label(r, ing["name"], f"{where}.name")
        namespace = _label(r, ing.get("namespace", DEFAULT_NAMESPACE), f"{where}.namespace")
        if any(x.name == name and x.namespace == namespace for x in out):
            raise r.fail(f"{where}.name", f"duplicate ingress {namespace}/{name}")
        rules = []
        raw_rules = r.sequence(ing["rules"], f"{where}.rules", " of rules", MAX_RULES)
        if not raw_rules:
            raise r.fail(f"{where}.rules", "must list at least one rule")
        for j, raw_rule in enumerate(raw_rules):
            rwhere = f"{where}.rules[{j}]"
            rule = r.mapping(raw_rule, rwhere, RULE_KEYS)
            host = rule.get("host", "")
            if not isinstance(host, str) or (host and (len(host) > 253
                                                       or not HOST_RE.fullmatch(host))):
                raise r.fail(f"{rwhere}.host", f"{show(host)} is not a lower-case DNS name "
                             "(wildcards are not emulated)")
            if "paths" not in rule:
                raise r.fail(f"{rwhere}.paths", "is required")
            paths = []
            raw_paths = r.sequence(rule["paths"], f"{rwhere}.paths", " of paths", MAX_PATHS)
            if not raw_paths:
                raise r.fail(f"{rwhere}.paths", "must list at least one path")
            for k, raw_path in enumerate(raw_paths):
                paths.append(_path(r, raw_path, f"{rwhere}.paths[{k}]", namespace, services))
            keys = [(p.path, p.path_type) for p in paths]
            if len(set(keys)) != len(keys):
                raise r.fail(f"{rwhere}.paths", "the same path and pathType twice")
            rules.append(IngressRule(host, tuple(paths)))
        out.append(IngressSpec(name, tuple(rules), namespace))
    return tuple(out)


def _path(r: Reader, raw: Any, where: str, namespace: str,
          services: dict[str, Any]) -> IngressPath:
    path = r.mapping(raw, where, PATH_KEYS)
    r.require(path, where, "path", "service", "port")
    value = path["path"]
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 1024 \
            or not re.fullmatch(r"/[A-Za-z0-9/._~%!$&'()*+,;=:@-]*", value):
        raise r.fail(f"{where}.path", f"{show(value)} is not a URL path")
    path_type = path.get("pathType", PREFIX_PATH)
    if path_type not in (PREFIX_PATH, EXACT_PATH):
        raise r.fail(f"{where}.pathType", f"{show(path_type)} is not one of Prefix, Exact "
                     "(ImplementationSpecific is not emulated)")
    service = _label(r, path["service"], f"{where}.service")
    svc = services.get(f"{namespace}/{service}")
    if svc is None:
        raise r.fail(f"{where}.service", f"no service {namespace}/{service} in services")
    port = r.integer(path["port"], f"{where}.port", 1, 65535)
    if not any(p.port == port and p.protocol == TCP for p in svc.ports):
        raise r.fail(f"{where}.port", f"service {svc.key} has no TCP port {port} (ports: "
                     + ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) + ")")
    return IngressPath(value, service, port, path_type)


def check_host_ports(r: Reader, spec: ClusterSpec) -> None:
    """Two pods of one node cannot open the same host port (the scheduler's NodePorts
    filter keeps them apart); nor can a host port be in the node-port range, where
    kube-proxy's rules would take its traffic first."""
    low, high = NODE_PORT_RANGE
    for i, node in enumerate(spec.nodes):
        used: dict[tuple[int, str], str] = {}
        for j, pod in enumerate(node.pods):
            for port in pod.host_ports:
                assert port.host_port is not None
                where = f"nodes[{i}].pods[{j}]"
                key = (port.host_port, port.protocol)
                if key in used:
                    raise r.fail(where, f"host port {port.host_port}/{port.protocol} is also "
                                 f"opened by pod {used[key]} on node {node.name}")
                if spec.services and low <= port.host_port <= high:
                    raise r.fail(where, f"host port {port.host_port} is in the node-port "
                                 f"range {low}-{high}")
                used[key] = pod.name


def check_controller_name(r: Reader, spec: ClusterSpec) -> None:
    """With ingresses the cluster runs its ingress controller in a pod of its own name."""
    if not spec.ingresses:
        return
    for i, node in enumerate(spec.nodes):
        for j, pod in enumerate(node.pods):
            if pod.name == CONTROLLER_POD:
                raise r.fail(f"nodes[{i}].pods[{j}].name", f"'{CONTROLLER_POD}' is the ingress "
                             "controller's pod in a cluster with ingresses")


def _taken_names(spec: ClusterSpec) -> dict[str, str]:
    names = {"router": "the router"}
    for n in spec.nodes:
        names[n.name] = f"node {n.name}"
        for p in n.pods:
            names[p.name] = f"pod {p.name}"
    for h in spec.external_hosts:
        names[h.name] = f"external host {h.name}"
    return names


def _ranges(spec: ClusterSpec, with_lb: bool = True) -> list[tuple[IPv4Network, str]]:
    out = [(u, "underlay") for u in spec.underlays] + [(spec.cluster_cidr, "cluster_cidr")]
    if spec.services:
        out.append((spec.service_cidr, "service_cidr"))
    if with_lb and (spec.ingresses or any(s.type == LOAD_BALANCER for s in spec.services)):
        out.append((spec.load_balancer_network, "load_balancer_network"))
    return out


def _label(r: Reader, value: Any, where: str) -> str:
    if not isinstance(value, str) or not DNS_LABEL.fullmatch(value):
        raise r.fail(where, f"{show(value)} must be a DNS label: lower-case letters, digits "
                     "and '-', starting with a letter, at most 63")
    return value
