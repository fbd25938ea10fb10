"""Cluster specs: frozen dataclasses, loaded from YAML topology files and validated.

A spec is refused before anything is created, with a `SpecError` that names the file,
the field (as a path such as ``nodes[1].pods[0].name``) and what is wrong. Validation
is pure, so every rule is tested without root.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml

from testbed.errors import SpecError

# `<node>-eth0` is the node's underlay interface (Mininet names it): 15 characters at most.
MAX_NODE_NAME = 10
# Kubernetes object names are DNS labels; ours also become namespace and file names.
NAME_RE = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")  # used with fullmatch
MAX_POD_NAME = 40
RESERVED_NODE_NAMES = {"router"}

DEFAULT_UNDERLAY = "10.100.0.0/24"
DEFAULT_NODE_CIDR_PREFIX = 24
DEFAULT_NON_MASQUERADE_CIDR = "10.0.0.0/8"
# Pod network layouts: kubenet (a pod CIDR per node, cbr0, one router route per node), or
# Docker's default (every node's docker0 is 172.17.0.1/16: the article's worst case).
POD_NETWORKS = ("kubenet", "docker-default")


@dataclass(frozen=True)
class ContainerSpec:
    """A process started inside a pod's namespaces; it shares the pod's localhost."""

    name: str
    command: tuple[str, ...] = ("sleep", "infinity")


@dataclass(frozen=True)
class PodSpec:
    """A pod: a pause process holding the namespaces, and its app containers."""

    name: str
    containers: tuple[ContainerSpec, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    """A Kubernetes node: a Mininet host with cbr0 and its pods."""

    name: str
    pods: tuple[PodSpec, ...] = ()
    pod_cidr: IPv4Network | None = None  # None: carved from the cluster CIDR in order


@dataclass(frozen=True)
class ClusterSpec:
    """A whole cluster as a topology file describes it."""

    name: str
    cluster_cidr: IPv4Network
    nodes: tuple[NodeSpec, ...]
    node_cidr_prefix: int = DEFAULT_NODE_CIDR_PREFIX
    underlay: IPv4Network = field(default_factory=lambda: IPv4Network(DEFAULT_UNDERLAY))
    non_masquerade_cidr: IPv4Network = field(
        default_factory=lambda: IPv4Network(DEFAULT_NON_MASQUERADE_CIDR)
    )
    description: str = ""
    pod_network: str = "kubenet"
    source: str = ""  # the file it came from, for messages and metadata

    @property
    def pods(self) -> list[tuple[NodeSpec, PodSpec]]:
        """Every (node, pod) pair, in file order."""
        return [(n, p) for n in self.nodes for p in n.pods]

    def to_dict(self) -> dict[str, Any]:
        """A plain, fully expanded form (for metadata.json): reloading it gives this spec."""
        return {
            "name": self.name,
            "description": self.description,
            "cluster_cidr": str(self.cluster_cidr),
            "node_cidr_prefix": self.node_cidr_prefix,
            "underlay": str(self.underlay),
            "non_masquerade_cidr": str(self.non_masquerade_cidr),
            "pod_network": self.pod_network,
            "nodes": [
                {
                    "name": n.name,
                    **({"pod_cidr": str(n.pod_cidr)} if n.pod_cidr else {}),
                    "pods": [
                        {
                            "name": p.name,
                            "containers": [
                                {"name": c.name, "command": list(c.command)}
                                for c in p.containers
                            ],
                        }
                        for p in n.pods
                    ],
                }
                for n in self.nodes
            ],
        }


TOP_KEYS = {
    "name", "description", "cluster_cidr", "node_cidr_prefix", "underlay",
    "non_masquerade_cidr", "nodes", "pod_network",
}
NODE_KEYS = {"name", "pods", "pod_cidr"}
POD_KEYS = {"name", "containers"}
CONTAINER_KEYS = {"name", "command"}


class _Reader:
    """Reads one mapping of a topology file, raising SpecError with the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> SpecError:
        return SpecError(self.source, where, problem)

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where or "(top level)", f"must be a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(where or "(top level)", f"key {key!r} is not a string")
            if key not in allowed:
                hint = _close_match(key, allowed)
                prefix = f"{where}." if where else ""
                raise self.fail(
                    f"{prefix}{key}",
                    "unknown key" + (f" (did you mean '{hint}'?)" if hint else "")
                    + f"; allowed: {', '.join(sorted(allowed))}",
                )
        return value

    def name(self, value: Any, where: str, max_len: int) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, got {_kind(value)}")
        if len(value) > max_len:
            raise self.fail(where, f"{value!r} is longer than {max_len} characters")
        if not NAME_RE.fullmatch(value):
            raise self.fail(
                where,
                f"{value!r} must be lower-case letters, digits and '-', "
                "starting with a letter and not ending with '-'",
            )
        return value

    def network(self, value: Any, where: str) -> IPv4Network:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a CIDR string such as 10.0.0.0/16, got {_kind(value)}")
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise self.fail(where, f"{value!r} is not a valid network: {exc}") from None
        if not isinstance(net, IPv4Network):
            raise self.fail(where, f"'{value}' is not IPv4 (only IPv4 is supported)")
        return net

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(where, f"{value} is out of range {low}..{high}")
        return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _close_match(key: str, allowed: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None


def parse_spec(data: Any, source: str = "") -> ClusterSpec:
    """Validate a decoded topology document and build its spec (SpecError if invalid)."""
    r = _Reader(source)
    if data is None:
        raise r.fail("(top level)", "the file is empty")
    top = r.mapping(data, "", TOP_KEYS)
    for required in ("name", "cluster_cidr", "nodes"):
        if required not in top:
            raise r.fail(required, "is required")
    name = r.name(top["name"], "name", 40)
    description = top.get("description", "")
    if not isinstance(description, str):
        raise r.fail("description", f"must be a string, got {_kind(description)}")
    cluster_cidr = r.network(top["cluster_cidr"], "cluster_cidr")
    underlay = r.network(top.get("underlay", DEFAULT_UNDERLAY), "underlay")
    nmc = r.network(top.get("non_masquerade_cidr", DEFAULT_NON_MASQUERADE_CIDR),
                    "non_masquerade_cidr")
    prefix = r.integer(top.get("node_cidr_prefix", DEFAULT_NODE_CIDR_PREFIX),
                       "node_cidr_prefix", cluster_cidr.prefixlen, 30)
    pod_network = top.get("pod_network", "kubenet")
    if pod_network not in POD_NETWORKS:
        raise r.fail("pod_network", f"{pod_network!r} is not one of {', '.join(POD_NETWORKS)}")

    raw_nodes = top["nodes"]
    if not isinstance(raw_nodes, list):
        raise r.fail("nodes", f"must be a list of nodes, got {_kind(raw_nodes)}")
    if not raw_nodes:
        raise r.fail("nodes", "must list at least one node")

    nodes: list[NodeSpec] = []
    pod_counter = 0
    seen_pods: dict[str, str] = {}
    for i, raw in enumerate(raw_nodes):
        where = f"nodes[{i}]"
        node = r.mapping(raw, where, NODE_KEYS)
        if "name" not in node:
            raise r.fail(f"{where}.name", "is required")
        node_name = r.name(node["name"], f"{where}.name", MAX_NODE_NAME)
        if node_name in RESERVED_NODE_NAMES:
            raise r.fail(f"{where}.name", f"'{node_name}' is reserved for the router")
        if any(n.name == node_name for n in nodes):
            raise r.fail(f"{where}.name", f"duplicate node name '{node_name}'")
        pod_cidr = None
        if "pod_cidr" in node:
            pod_cidr = r.network(node["pod_cidr"], f"{where}.pod_cidr")
        pods: list[PodSpec] = []
        raw_pods = node.get("pods", 0)
        if isinstance(raw_pods, bool) or not isinstance(raw_pods, int | list):
            raise r.fail(f"{where}.pods",
                         f"must be a count or a list of pods, got {_kind(raw_pods)}")
        if isinstance(raw_pods, int):
            if raw_pods < 0:
                raise r.fail(f"{where}.pods", f"{raw_pods} is negative")
            for _ in range(raw_pods):
                pod_counter += 1
                pods.append(PodSpec(name=f"pod-{pod_counter}"))
        else:
            for j, raw_pod in enumerate(raw_pods):
                pwhere = f"{where}.pods[{j}]"
                pod_counter += 1
                if isinstance(raw_pod, str):
                    raw_pod = {"name": raw_pod}
                pod = r.mapping(raw_pod, pwhere, POD_KEYS)
                pod_name = r.name(pod.get("name", f"pod-{pod_counter}"), f"{pwhere}.name",
                                  MAX_POD_NAME)
                pods.append(PodSpec(pod_name, _containers(r, pod.get("containers", []), pwhere)))
        for j, p in enumerate(pods):
            if p.name in seen_pods:
                raise r.fail(f"{where}.pods[{j}].name",
                             f"duplicate pod name '{p.name}' (also on {seen_pods[p.name]})")
            seen_pods[p.name] = node_name
        nodes.append(NodeSpec(node_name, tuple(pods), pod_cidr))

    spec = ClusterSpec(
        name=name, description=description, cluster_cidr=cluster_cidr, nodes=tuple(nodes),
        node_cidr_prefix=prefix, underlay=underlay, non_masquerade_cidr=nmc,
        pod_network=pod_network, source=source,
    )
    _check_addressing(r, spec)
    return spec


def _containers(r: _Reader, raw: Any, pwhere: str) -> tuple[ContainerSpec, ...]:
    if not isinstance(raw, list):
        raise r.fail(f"{pwhere}.containers", f"must be a list, got {_kind(raw)}")
    out: list[ContainerSpec] = []
    for k, raw_c in enumerate(raw):
        cwhere = f"{pwhere}.containers[{k}]"
        c = r.mapping(raw_c, cwhere, CONTAINER_KEYS)
        cname = r.name(c.get("name", f"c{k + 1}"), f"{cwhere}.name", MAX_POD_NAME)
        if any(x.name == cname for x in out):
            raise r.fail(f"{cwhere}.name", f"duplicate container name '{cname}'")
        command = c.get("command", ["sleep", "infinity"])
        if isinstance(command, str):
            command = shlex.split(command)
        if (not isinstance(command, list) or not command
                or not all(isinstance(a, str) for a in command)):
            raise r.fail(f"{cwhere}.command", "must be a non-empty string or list of strings")
        out.append(ContainerSpec(cname, tuple(command)))
    return tuple(out)


def _check_addressing(r: _Reader, spec: ClusterSpec) -> None:
    """Cross-field rules: every address must be plannable and unambiguous."""
    from testbed.addressing import carve_pod_cidrs, pod_capacity

    available = 2 ** (spec.node_cidr_prefix - spec.cluster_cidr.prefixlen)
    if len(spec.nodes) > available:
        raise r.fail("nodes", f"{len(spec.nodes)} nodes do not fit: cluster_cidr "
                     f"{spec.cluster_cidr} holds {available} /{spec.node_cidr_prefix} pod CIDRs")
    underlay_hosts = spec.underlay.num_addresses - 2
    if len(spec.nodes) + 1 > underlay_hosts:
        raise r.fail("underlay", f"{spec.underlay} holds {underlay_hosts} addresses; the router "
                     f"and {len(spec.nodes)} nodes need {len(spec.nodes) + 1}")
    if spec.underlay.overlaps(spec.cluster_cidr):
        raise r.fail("underlay", f"{spec.underlay} overlaps cluster_cidr {spec.cluster_cidr}")
    if spec.pod_network == "docker-default":
        # every node has the same 172.17.0.0/16: overlap is the point of this layout
        from testbed.addressing import DOCKER_SUBNET

        if spec.underlay.overlaps(DOCKER_SUBNET):
            raise r.fail("underlay", f"{spec.underlay} overlaps Docker's {DOCKER_SUBNET}")
        return
    auto = carve_pod_cidrs(spec.cluster_cidr, spec.node_cidr_prefix, len(spec.nodes))
    cidrs: list[tuple[str, IPv4Network]] = []
    for i, (node, default) in enumerate(zip(spec.nodes, auto, strict=True)):
        where = f"nodes[{i}].pod_cidr"
        cidr = node.pod_cidr or default
        if node.pod_cidr is not None and not node.pod_cidr.subnet_of(spec.cluster_cidr):
            raise r.fail(where, f"{cidr} is outside cluster_cidr {spec.cluster_cidr}")
        if cidr.prefixlen > 30:
            raise r.fail(where, f"{cidr} is too small for a bridge and a pod")
        for other_name, other in cidrs:
            if cidr.overlaps(other):
                raise r.fail(where, f"{cidr} overlaps the pod CIDR {other} of node {other_name}")
        if len(node.pods) > pod_capacity(cidr):
            raise r.fail(f"nodes[{i}].pods", f"{len(node.pods)} pods do not fit in {cidr} "
                         f"(room for {pod_capacity(cidr)} after the cbr0 gateway)")
        cidrs.append((node.name, cidr))


def load_spec(path: str | Path) -> ClusterSpec:
    """Read and validate a topology file; every problem is a one-line SpecError."""
    source = str(path)
    p = Path(path)
    if not p.exists():
        raise SpecError(source, "(file)", "no such file")
    if p.is_dir():
        raise SpecError(source, "(file)", "is a directory, not a topology file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(source, "(file)", f"cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, line, f"YAML syntax error: {problem}") from None
    return parse_spec(data, source)
