"""Applying a pod network's `NodeSetup` to a node: netlink and /proc writes from here,
the iptables rules of all nodes run side by side.

Why not Mininet's shell commands: a round trip of ~1 ms each, a dozen per node. The
resulting state is what kubelet and the pod network's agent would leave (the values come
from `PodNetwork.node_setup`), plus the node's `lo` and default route, which Mininet's
per-host configuration would set through the shell.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Network
from typing import Any

from testbed.errors import TestbedError
from testbed.kernel import netlink as nl
from testbed.kernel import ns
from testbed.model.names import underlay_intf
from testbed.model.podnet import NodeSetup

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


def up_interface_mtus(pid: int) -> dict[str, int]:
    """MTU of each up (administratively, IFF_UP) interface of a Mininet node, read without
    spawning a process: Mininet remounts /sys in the node's mount namespace, reachable
    through /proc. Not operstate: the kernel updates it asynchronously after a link
    comes up."""
    base = f"/proc/{pid}/root/sys/class/net"
    mtus = {}
    for name in os.listdir(base):
        with open(f"{base}/{name}/flags") as f:
            up = int(f.read(), 16) & nl.IFF_UP
        if up:
            with open(f"{base}/{name}/mtu") as f:
                mtus[name] = int(f.read())
    return mtus


def apply_links(node: str, pid: int, setup: NodeSetup) -> None:
    """Sysctls, the bridge and its address, `lo`, the default route and the node's
    routes, in the order `NodeSetup` gives (everything but iptables)."""
    with ns.own_procfs() as proc, ns.entered(ns.netns_of(pid)):
        for key, value in setup.sysctls:
            ns.write_sysctl(key, value, proc)
        with nl.RtnlSocket() as sock:
            eth0 = sock.link_index(underlay_intf(node))
            steps: list[bytes] = []
            names: list[str] = []
            if setup.bridge is not None:
                sock.request([nl.bridge(setup.bridge, mtu=setup.mtu, up=False)],
                             [f"{node}: {setup.bridge}"])
                index = sock.link_index(setup.bridge)
                if setup.bridge_ip is not None:
                    steps.append(nl.addr_add(index, setup.bridge_ip.ip,
                                             setup.bridge_ip.network, broadcast=False))
                    names.append(f"{setup.bridge} address")
                steps.append(nl.link_up(index))
                names.append(f"{setup.bridge} up")
            steps += [nl.link_up(nl.LO_INDEX), nl.route_add(DEFAULT_ROUTE, setup.default_via, eth0)]
            names += ["lo up", "default route"]
            for route in setup.routes:
                steps.append(nl.route_add(route.dst, route.via, eth0))
                names.append(f"route {route.dst} via {route.via}")
            sock.request(steps, [f"{node}: {step}" for step in names])
        for key, value in setup.bridge_sysctls:
            ns.write_sysctl(key, value, proc)


def run_rules(nodes: Sequence[tuple[str, Any, Sequence[Sequence[str]]]]) -> None:
    """Each node's iptables argument lists, in order within a node, nodes side by side:
    (name, Mininet host, rules) each. One error names every node whose rule failed."""
    pending = [(name, host, list(rules)) for name, host, rules in nodes if rules]
    while pending:
        running = [(name, host, rules, rules[0],
                    host.popen(list(rules[0]), stdin=subprocess.DEVNULL, text=True))
                   for name, host, rules in pending]
        failed = []
        for name, _, _, rule, proc in running:
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                failed.append(f"{name}: {shlex.join(rule)}: {err.strip()[:200]}")
        if failed:
            raise TestbedError("node set-up failed on " + "; ".join(failed))
        pending = [(name, host, rules[1:]) for name, host, rules, _, _ in running if rules[1:]]
