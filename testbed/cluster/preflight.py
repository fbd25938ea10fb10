"""Checks before anything is created: root, the tools a cluster needs (naming the Debian
package of each missing one), and names the cluster needs that exist without a record."""

from __future__ import annotations

import os
import shutil

from testbed.emulation.ipmn import ensure_frr_on_path, guard_global_cleanup
from testbed.errors import LeftoverError, MissingDependencyError, PrivilegeError
from testbed.kernel import cgroups, features
from testbed.kernel.ns import NETNS_DIR
from testbed.model.cpu import cgroup_name
from testbed.model.names import (
    OVS,
    pod_netns_name,
    router_intf,
    underlay_intf,
    underlay_switch,
)
from testbed.model.podnet import pod_network
from testbed.model.spec import LOAD_BALANCER, ClusterSpec
from testbed.model.svc.modes import proxy_mode
from testbed.pods.cni import CNI_PATH

# tool -> Debian package that provides it
TOOLS = {
    "mnexec": "mininet",
    "brctl": "bridge-utils",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "catatonit": "catatonit",
    "iptables": "iptables",
    "ping": "iputils-ping",
    "iperf3": "iperf3",
    "zebra": "frr",
    "staticd": "frr",
}
CNI_PLUGINS = ("bridge", "host-local", "loopback")


def check_root() -> None:
    if os.geteuid() != 0:
        raise PrivilegeError("this needs root (network namespaces, bridges, netfilter): "
                             "run it with sudo")


def missing_tools() -> list[tuple[str, str]]:
    """(tool, Debian package) for every required tool not found."""
    ensure_frr_on_path()
    missing = [(tool, pkg) for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    for plugin in CNI_PLUGINS:
        if not os.access(os.path.join(CNI_PATH, plugin), os.X_OK):
            missing.append((f"{CNI_PATH}/{plugin}", "containernetworking-plugins"))
    return missing


def check_all() -> None:
    """Everything a bring-up needs, checked before anything is created."""
    check_root()
    missing = missing_tools()
    if missing:
        pkgs = sorted({pkg for _, pkg in missing})
        tools = ", ".join(tool for tool, _ in missing)
        raise MissingDependencyError(
            f"missing {tools}: install the Debian package(s) {' '.join(pkgs)} "
            "(or run `sudo make setup`)"
        )
    guard_global_cleanup()


# tools a topology with services needs besides, whatever its kube-proxy mode, -> Debian
# package; the mode adds its own (`tools` of its plug-in, testbed.model.svc.modes).
# iptables-restore stays here for every mode, as it always was: a running cluster can be
# switched to a mode that uses it (`proxymode`, the claims that compare modes).
SERVICE_TOOLS = {"dnsmasq": "dnsmasq-base", "conntrack": "conntrack",
                 "iptables-restore": "iptables"}


def check_features(spec: ClusterSpec) -> None:
    """The kernel features and tools the spec asks for (one line naming what is
    missing)."""
    tools = pod_network(spec.pod_network).tools
    missing_tools = {t: p for t, p in tools.items() if shutil.which(t) is None}
    if missing_tools:
        raise MissingDependencyError(
            f"pod_network {spec.pod_network} needs {', '.join(missing_tools)}: install the "
            f"Debian package(s) {' '.join(sorted(set(missing_tools.values())))} (or run "
            "`sudo make setup`)")
    if spec.services:
        wanted = {**SERVICE_TOOLS, **proxy_mode(spec.kube_proxy_mode).tools}
        if any(s.type == LOAD_BALANCER for s in spec.services) or spec.ingresses:
            wanted["haproxy"] = "haproxy"  # the cloud load balancer
        if spec.ingresses:
            wanted["nginx"] = "nginx-light"  # the ingress controller
        missing = {t: p for t, p in wanted.items() if shutil.which(t) is None}
        if missing:
            raise MissingDependencyError(
                f"services need {', '.join(missing)}: install the Debian package(s) "
                f"{' '.join(sorted(set(missing.values())))} (or run `sudo make setup`)")
    if any(n.cpu is not None for n in spec.nodes):
        missing_cpu = cgroups.problems()
        if missing_cpu:
            raise MissingDependencyError("; ".join(missing_cpu))
    delayed = [n.name for n in spec.nodes if n.uplink.needs_netem]
    if delayed:
        present, detail = features.kernel_feature("netem")
        if present is False:
            raise MissingDependencyError(
                f"link delay and jitter (uplinks of {', '.join(delayed)}) need the kernel's "
                f"netem qdisc (module sch_netem), which this kernel lacks ({detail}); "
                "rate limits and loss work without it")
    if spec.underlay_switch == OVS:
        present, detail = features.openvswitch()
        if not present:
            raise MissingDependencyError(
                f"underlay_switch: ovs needs Open vSwitch, which this machine lacks: "
                f"{detail}; use linux-bridge here (`testbed doctor` says what it can emulate)")


def refuse_foreign_names(spec: ClusterSpec) -> None:
    """Refuse to start over names that exist but are not ours (nothing is deleted).

    Mininet deletes any interface that has the name of one it is about to create, and
    ipmininet's switch deletes a bridge of its name: checked here, so they never do.
    (Run after a crashed run's leftovers are undone: what is left is not ours.)
    """
    segments = range(max(1, len(spec.racks)))
    switches = {underlay_switch(i) for i in segments}
    ours = switches | {router_intf(i) for i in segments} | {underlay_intf(n.name)
                                                             for n in spec.nodes}
    clash = sorted(name for name in os.listdir("/sys/class/net")
                   if name in ours or any(name.startswith(f"{s}-eth") for s in switches))
    netns = {pod_netns_name(n.name, p.name) for n, p in spec.pods}
    clash += sorted(n for n in netns if os.path.exists(f"{NETNS_DIR}/{n}"))
    hierarchy, _ = cgroups.find()
    if hierarchy is not None:
        clash += sorted(f"cgroup {hierarchy.path(cgroup_name(n.name))}" for n in spec.nodes
                        if n.cpu is not None and hierarchy.path(cgroup_name(n.name)).exists())
    if clash:
        raise LeftoverError(
            "names this cluster needs already exist and were not recorded by a testbed "
            f"run: {', '.join(clash)}; remove them or rename the nodes"
        )
