"""Topology files -> validated `ClusterSpec` (testbed.model.spec). Pure.

A spec is refused before anything is created, with a `SpecError` that names the file,
the field (as a path such as ``nodes[1].pods[0].name``) and what is wrong. The rules every
cluster shares are here; a pod network adds its own (`PodNetwork.check`). Validation is
pure, so every rule is tested without root.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import shlex
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml

from testbed.errors import SpecError
from testbed.model.names import MAX_NODE_NAME, ROUTER
from testbed.model.podnet import POD_NETWORKS, pod_network
from testbed.model.spec import (
    DEFAULT_COMMAND,
    DEFAULT_NODE_CIDR_PREFIX,
    DEFAULT_NON_MASQUERADE_CIDR,
    DEFAULT_POD_NETWORK,
    DEFAULT_UNDERLAY,
    ClusterSpec,
    ContainerSpec,
    NodeSpec,
    PodSpec,
)

# Kubernetes object names are DNS labels; ours also become namespace and file names.
NAME_RE = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")  # used with fullmatch
MAX_POD_NAME = 40
RESERVED_NODE_NAMES = {ROUTER}

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
    mode = top.get("pod_network", DEFAULT_POD_NETWORK)
    if mode not in POD_NETWORKS:
        raise r.fail("pod_network", f"{mode!r} is not one of {', '.join(POD_NETWORKS)}")

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
        pod_network=mode, source=source,
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
        command = c.get("command", list(DEFAULT_COMMAND))
        if isinstance(command, str):
            command = shlex.split(command)
        if (not isinstance(command, list) or not command
                or not all(isinstance(a, str) for a in command)):
            raise r.fail(f"{cwhere}.command", "must be a non-empty string or list of strings")
        out.append(ContainerSpec(cname, tuple(command)))
    return tuple(out)


def _check_addressing(r: _Reader, spec: ClusterSpec) -> None:
    """Cross-field rules every pod network shares, then the pod network's own."""
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
    pod_network(spec.pod_network).check(spec, r.fail)


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
