"""The Kubernetes side of a topology file: pod labels and readiness probes, the service
CIDR, kube-proxy's mode and the `services:` list. Pure.

Inside a pod or a service the keys are Kubernetes' own (`readinessProbe`, `targetPort`,
`sessionAffinity`, ...), so a user can paste from a manifest; cluster-level keys stay
snake_case as the rest of the file. Validation is as strict as the API server's for what
the testbed emulates: names, ranges, duplicates, node ports, cluster IPs inside the
service CIDR, policies only where Kubernetes accepts them. A selector that matches no
pod is not an error (Kubernetes accepts it; the service then has no endpoints and
rejects connections): `spec_warnings` says so.
"""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.errors import quote as show
from testbed.model.load.reader import Reader, kind_of
from testbed.model.podnet import pod_network
from testbed.model.spec import (
    CLIENT_IP,
    CLUSTER,
    CLUSTER_IP,
    DEFAULT_NAMESPACE,
    LOAD_BALANCER,
    LOCAL,
    NODE_PORT,
    NONE,
    TCP,
    UDP,
    ClusterSpec,
    ReadinessProbe,
    ServicePortSpec,
    ServiceSpec,
)
from testbed.model.svc.modes import PROXY_MODES
from testbed.model.svc.outside import (
    CONTROLLER_NAMESPACE,
    CONTROLLER_SERVICE,
    NODE_PORT_RANGE,
)
from testbed.model.svc.plan import DNS_NAMESPACE, DNS_POD, DNS_SERVICE, reserved_ips

KUBE_PROXY_MODES = PROXY_MODES.names  # the registry's, in its order
SERVICE_TYPES = (CLUSTER_IP, NODE_PORT, LOAD_BALANCER)
MAX_SERVICES = 5000
MAX_PORTS = 100
MAX_LABELS = 64
SERVICE_KEYS = {"name", "namespace", "selector", "type", "clusterIP", "sessionAffinity",
                "externalTrafficPolicy", "ports", "loadBalancerIP", "healthCheckNodePort"}
PORT_KEYS = {"port", "targetPort", "protocol", "name", "nodePort"}
PROBE_KEYS = {"tcpSocket", "httpGet", "periodSeconds", "timeoutSeconds", "failureThreshold",
              "successThreshold", "initialDelaySeconds"}
# A label key (an optional DNS-subdomain prefix and a name) and value, as Kubernetes has them.
LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)")
LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")  # a Service name (RFC 1035)


def kube_proxy_mode(r: Reader, value: Any) -> str:
    if value == "ipvs":
        raise r.fail("kube_proxy_mode", "'ipvs' needs the kernel's IPVS, which these kernels "
                     f"lack; use one of {', '.join(KUBE_PROXY_MODES)}")
    if not isinstance(value, str) or value not in KUBE_PROXY_MODES:
        raise r.fail("kube_proxy_mode", f"{show(value)} is not one of "
                     f"{', '.join(KUBE_PROXY_MODES)}")
    return value


def labels(r: Reader, value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """A label map (a pod's labels, a service's selector), as sorted (key, value) pairs."""
    r.mapping(value, where, set(value) if isinstance(value, dict) else set())
    if len(value) > MAX_LABELS:
        raise r.fail(where, f"{len(value)} labels; at most {MAX_LABELS} are supported")
    out = []
    for key, val in value.items():
        prefix, _, label_name = key.rpartition("/")
        if not LABEL_NAME.fullmatch(label_name) or (prefix and not LABEL_PREFIX.fullmatch(prefix)):
            raise r.fail(f"{where}.{show(key)[1:-1]}", "is not a label key (letters, digits, "
                         "'-', '_', '.', at most 63, optionally after 'prefix/')")
        if not isinstance(val, str) or (val and not LABEL_NAME.fullmatch(val)):
            raise r.fail(f"{where}.{key}", f"{show(val)} is not a label value (a string of "
                         "letters, digits, '-', '_', '.', at most 63)")
        out.append((key, val))
    return tuple(sorted(out))


def readiness(r: Reader, value: Any, where: str) -> ReadinessProbe:
    """readinessProbe: tcpSocket {port} or httpGet {path, port}, with Kubernetes' timing."""
    probe = r.mapping(value, where, PROBE_KEYS)
    checks = [k for k in ("tcpSocket", "httpGet") if k in probe]
    if len(checks) != 1:
        raise r.fail(where, "needs exactly one of tcpSocket and httpGet (exec probes are not "
                     "emulated)")
    check = checks[0]
    body = r.mapping(probe[check], f"{where}.{check}",
                     {"port"} if check == "tcpSocket" else {"port", "path"})
    if "port" not in body:
        raise r.fail(f"{where}.{check}.port", "is required")
    port = r.integer(body["port"], f"{where}.{check}.port", 1, 65535)
    path = None
    if check == "httpGet":
        path = body.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 1024 \
                or any(c.isspace() for c in path):
            raise r.fail(f"{where}.httpGet.path", f"{show(path)} is not a URL path")
    return ReadinessProbe(
        port=port, path=path,
        period_s=r.integer(probe.get("periodSeconds", 10), f"{where}.periodSeconds", 1, 3600),
        timeout_s=r.integer(probe.get("timeoutSeconds", 1), f"{where}.timeoutSeconds", 1, 60),
        failures=r.integer(probe.get("failureThreshold", 3), f"{where}.failureThreshold", 1,
                           100),
        successes=r.integer(probe.get("successThreshold", 1), f"{where}.successThreshold", 1,
                            100),
        initial_delay_s=r.integer(probe.get("initialDelaySeconds", 0),
                                  f"{where}.initialDelaySeconds", 0, 3600),
    )


def services(r: Reader, raw: Any, service_cidr: IPv4Network) -> tuple[ServiceSpec, ...]:
    """The `services:` list, each checked on its own and against the others."""
    out: list[ServiceSpec] = []
    seen_keys: dict[str, int] = {}
    cluster_ips: dict[IPv4Address, str] = {}
    node_ports: dict[tuple[int, str], str] = {}
    for i, raw_svc in enumerate(r.sequence(raw, "services", " of services", MAX_SERVICES)):
        svc = _service(r, raw_svc, f"services[{i}]", service_cidr)
        if svc.key in seen_keys:
            raise r.fail(f"services[{i}].name", f"duplicate service {svc.key} (also "
                         f"services[{seen_keys[svc.key]}])")
        seen_keys[svc.key] = i
        if svc.cluster_ip is not None:
            if svc.cluster_ip in cluster_ips:
                raise r.fail(f"services[{i}].clusterIP", f"{svc.cluster_ip} is also the "
                             f"cluster IP of {cluster_ips[svc.cluster_ip]}")
            cluster_ips[svc.cluster_ip] = svc.key
        for j, port in enumerate(svc.ports):
            if port.node_port is not None:
                key = (port.node_port, port.protocol)
                if key in node_ports:
                    raise r.fail(f"services[{i}].ports[{j}].nodePort", f"{port.node_port}/"
                                 f"{port.protocol} is also a node port of {node_ports[key]}")
                node_ports[key] = svc.key
        out.append(svc)
    return tuple(out)


def _service(r: Reader, raw: Any, where: str, service_cidr: IPv4Network) -> ServiceSpec:
    svc = r.mapping(raw, where, SERVICE_KEYS)
    for required in ("name", "selector", "ports"):
        if required not in svc:
            raise r.fail(f"{where}.{required}", "is required (services without a selector "
                         "are not emulated)" if required == "selector" else "is required")
    name = _dns_label(r, svc["name"], f"{where}.name")
    namespace = _dns_label(r, svc.get("namespace", DEFAULT_NAMESPACE), f"{where}.namespace")
    if (namespace, name) == (DNS_NAMESPACE, DNS_SERVICE):
        raise r.fail(f"{where}.name", f"{DNS_NAMESPACE}/{DNS_SERVICE} is the cluster DNS "
                     "service, which the testbed creates")
    if (namespace, name) == (CONTROLLER_NAMESPACE, CONTROLLER_SERVICE):
        raise r.fail(f"{where}.name", f"{CONTROLLER_NAMESPACE}/{CONTROLLER_SERVICE} is the "
                     "ingress controller's service, which the testbed creates")
    selector = labels(r, svc["selector"], f"{where}.selector")
    if not selector:
        raise r.fail(f"{where}.selector", "must select by at least one label")
    kind = _choice(r, svc.get("type", CLUSTER_IP), f"{where}.type", SERVICE_TYPES)
    affinity = _choice(r, svc.get("sessionAffinity", NONE), f"{where}.sessionAffinity",
                       (NONE, CLIENT_IP))
    if "externalTrafficPolicy" in svc and kind == CLUSTER_IP:
        raise r.fail(f"{where}.externalTrafficPolicy", "may only be set for NodePort and "
                     "LoadBalancer services")
    policy = _choice(r, svc.get("externalTrafficPolicy", CLUSTER),
                     f"{where}.externalTrafficPolicy", (CLUSTER, LOCAL))
    cluster_ip = None
    if "clusterIP" in svc:
        cluster_ip = _address(r, svc["clusterIP"], f"{where}.clusterIP")
        if cluster_ip not in service_cidr:
            raise r.fail(f"{where}.clusterIP", f"{cluster_ip} is not a usable address of "
                         f"service_cidr {service_cidr}")
        reserved = reserved_ips(service_cidr)
        if cluster_ip in reserved:
            raise r.fail(f"{where}.clusterIP", f"{cluster_ip} is {reserved[cluster_ip]} "
                         f"in service_cidr {service_cidr}")
    raw_ports = r.sequence(svc["ports"], f"{where}.ports", " of ports", MAX_PORTS)
    if not raw_ports:
        raise r.fail(f"{where}.ports", "must list at least one port")
    ports = [_port(r, p, f"{where}.ports[{j}]", kind) for j, p in enumerate(raw_ports)]
    names = [p.name for p in ports]
    if len(ports) > 1 and (not all(names) or len(set(names)) != len(names)):
        raise r.fail(f"{where}.ports", "a service with several ports needs a distinct name "
                     "for each (as Kubernetes requires)")
    pairs = [(p.port, p.protocol) for p in ports]
    if len(set(pairs)) != len(pairs):
        raise r.fail(f"{where}.ports", "the same port and protocol twice")
    lb_ip = (_address(r, svc["loadBalancerIP"], f"{where}.loadBalancerIP")
             if "loadBalancerIP" in svc else None)
    health = (r.integer(svc["healthCheckNodePort"], f"{where}.healthCheckNodePort",
                        *NODE_PORT_RANGE) if "healthCheckNodePort" in svc else None)
    return ServiceSpec(name=name, namespace=namespace, selector=selector, type=kind,
                       ports=tuple(ports), cluster_ip=cluster_ip, session_affinity=affinity,
                       external_traffic_policy=policy, load_balancer_ip=lb_ip,
                       health_check_node_port=health)


def _port(r: Reader, raw: Any, where: str, kind: str) -> ServicePortSpec:
    port = r.mapping(raw, where, PORT_KEYS)
    if "port" not in port:
        raise r.fail(f"{where}.port", "is required")
    number = r.integer(port["port"], f"{where}.port", 1, 65535)
    target = port.get("targetPort", number)
    if isinstance(target, str):
        raise r.fail(f"{where}.targetPort", f"{show(target)}: named target ports are not "
                     "emulated; give the number")
    target = r.integer(target, f"{where}.targetPort", 1, 65535)
    protocol = _choice(r, port.get("protocol", TCP), f"{where}.protocol", (TCP, UDP))
    name = port.get("name", "")
    if name != "":
        name = _dns_label(r, name, f"{where}.name")
    node_port = None
    if "nodePort" in port:
        if kind == CLUSTER_IP:
            raise r.fail(f"{where}.nodePort", "may only be set for NodePort and LoadBalancer "
                         "services")
        node_port = r.integer(port["nodePort"], f"{where}.nodePort", *NODE_PORT_RANGE)
    return ServicePortSpec(port=number, target_port=target, protocol=protocol, name=name,
                           node_port=node_port)


def _dns_label(r: Reader, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise r.fail(where, f"must be a string, got {kind_of(value)}")
    if not DNS_LABEL.fullmatch(value):
        raise r.fail(where, f"{show(value)} must be a DNS label: lower-case letters, digits "
                     "and '-', starting with a letter, at most 63")
    return value


def _choice(r: Reader, value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise r.fail(where, f"{show(value)} is not one of {', '.join(allowed)}")
    return value


def _address(r: Reader, value: Any, where: str) -> IPv4Address:
    if not isinstance(value, str) or len(value) > 15:
        raise r.fail(where, f"{show(value)} is not an IPv4 address")
    try:
        return IPv4Address(value)
    except ipaddress.AddressValueError:
        raise r.fail(where, f"{show(value)} is not an IPv4 address") from None


def check_service_cidr(r: Reader, spec: ClusterSpec) -> None:
    """The service range is its own (claim 1 of the series' second part): no node's pod
    CIDR and not the underlay. It may lie inside `cluster_cidr`, as in the article (GKE
    took 10.3.240.0/20 from the end of 10.0.0.0/14), as long as no node's range reaches it."""
    if spec.service_cidr.prefixlen > 28:
        raise r.fail("service_cidr", f"{spec.service_cidr} is too small (at most /28)")
    for underlay in spec.underlays:
        if spec.service_cidr.overlaps(underlay):
            raise r.fail("service_cidr", f"{spec.service_cidr} overlaps underlay {underlay}")
    for node, cidr in zip(spec.nodes, pod_network(spec.pod_network).pod_cidrs(spec)):
        if spec.service_cidr.overlaps(cidr):
            raise r.fail("service_cidr", f"{spec.service_cidr} overlaps the pod CIDR {cidr} "
                         f"of node {node.name}")


def check_dns_pod_name(r: Reader, spec: ClusterSpec) -> None:
    """With services the cluster runs its DNS server in a pod of its own name."""
    for i, node in enumerate(spec.nodes):
        for j, pod in enumerate(node.pods):
            if pod.name == DNS_POD:
                raise r.fail(f"nodes[{i}].pods[{j}].name", f"'{DNS_POD}' is the cluster DNS "
                             "server's pod in a cluster with services")


def spec_warnings(spec: ClusterSpec) -> list[str]:
    """What Kubernetes accepts but is likely a mistake: a selector that matches no pod."""
    pods = [p for _, p in spec.pods]
    return [f"service {svc.key}: selector {dict(svc.selector)} matches no pod; it has no "
            "endpoints and refuses connections" for svc in spec.services
            if not any(p.matches(svc.selector) for p in pods)]
