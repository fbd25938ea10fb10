"""Bring-up: an ordered list of named steps, each timed into `cluster.timings`, and one
teardown path (testbed.cluster.down) whatever step fails, or on Ctrl-C and SIGTERM.

    checks     root, the tools a cluster needs
    lock       one cluster a machine
    leftovers  undo what crashed runs recorded
    names      refuse names that exist without a record (nothing is deleted)
    records    the run's directory and journal
    network    Mininet/ipmininet: router (FRR), underlay bridge, nodes
    cpu        nodes' CPU shares: a cpu cgroup each (testbed.model.cpu)
    links      constrained uplinks: rate (HTB), loss, delay (testbed.model.links)
    nodes      each node as the pod network prepares it
    converge   the pod network's daemons (BIRD for Calico), until their routes are in
    routes     the router's routes for the pods, confirmed in its kernel
    services   with services: the control plane, DNS records and the DNS pod
    pods       the spec's pods and their containers (with services: kubelet's
               resolv.conf and hosts in each pod's own mount namespace)
    proxies    with services: readiness probes, endpoints, kube-proxy on every node
    outside    the external hosts; with LoadBalancer services the cloud load balancer
               (HAProxy on `cloud-lb`), its checks settled

A step records what it is about to create before creating it, so that teardown (and,
after a crash, the next run or `testbed clean`) removes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from testbed.cluster import cpu, down, links, mesh, preflight
from testbed.cluster.context import ClusterContext, route_dst
from testbed.cluster.outside import OutsideController
from testbed.cluster.pods import add_pods
from testbed.cluster.services import ServiceController
from testbed.emulation.ipmn import GlobalCleanupRefused, IPNet, setLogLevel
from testbed.emulation.nodesetup import apply_links, run_rules, up_interface_mtus
from testbed.emulation.topo import ClusterTopo
from testbed.errors import TestbedError
from testbed.model.names import (
    FRR_TMP,
    LINK_GROUP,
    OVS,
    ROUTER,
    underlay_port,
    underlay_switch,
)
from testbed.records import undo
from testbed.records.journal import new_run

ROUTE_WAIT_S = 20.0


@dataclass(frozen=True)
class Step:
    """One named step of bring-up."""

    name: str
    run: Callable[[ClusterContext], None]


def check(cluster: ClusterContext) -> None:
    """Root, every tool, and the kernel features this spec needs, before anything is
    created."""
    preflight.check_all()
    preflight.check_features(cluster.spec)


def take_lock(cluster: ClusterContext) -> None:
    """One cluster at a time: Mininet's interface names are machine-wide."""
    cluster.lock.acquire(f"cluster {cluster.spec.name}")


def clean_leftovers(cluster: ClusterContext) -> None:
    """A crashed run's records are undone before anything new is made."""
    stale = undo.clean_stale_runs(cluster.state_root)
    if stale:
        cluster.progress(f"removed leftovers of {len(stale)} crashed run(s): "
                         + ", ".join(run for run, _ in stale))
    for run, errors in stale:
        if errors:  # what is left stays recorded; clashing names are refused next step
            cluster.progress(f"warning: leftovers of {run} not all removed: "
                             + "; ".join(errors))


def refuse_foreign_names(cluster: ClusterContext) -> None:
    """Names the cluster needs that exist without a record are refused, not deleted."""
    preflight.refuse_foreign_names(cluster.spec)


def open_records(cluster: ClusterContext) -> None:
    """The run's directory under the state root, and its journal."""
    cluster.state = new_run(cluster.spec.name, cluster.state_root)


def build_network(cluster: ClusterContext) -> None:
    """Router, underlay bridge and nodes, as an ipmininet network; FRR started."""
    records = cluster.records
    setLogLevel(cluster.mininet_log)
    records.subdir("frr")
    records.subdir("hosts")
    if not os.path.isdir(FRR_TMP):  # the router's mount point for its private tmpfs
        records.record("dir", path=FRR_TMP, if_empty=True)
    racks = [r.name for r in cluster.plan.racks] or [""]
    for rack_index, rack in enumerate(racks):
        if cluster.spec.underlay_switch == OVS:  # deleted with ovs-vsctl, not netlink
            records.record("ovsbridge", name=underlay_switch(rack_index))
        else:
            records.record("link", name=underlay_switch(rack_index))
        on_rack = sum(1 for n in cluster.plan.nodes if n.rack == rack)
        for i in range(1, on_rack + 2):  # the router's port, then its nodes'
            records.record("link", name=underlay_port(i, rack_index))
    if cluster.spec.underlay_switch != OVS:
        records.record("linkgroup", group=LINK_GROUP)
    cluster.progress(f"building network: router, underlay ({len(racks)} segment"
                     f"{'s' if len(racks) > 1 else ''}), {len(cluster.spec.nodes)} nodes")
    topo = ClusterTopo(cluster.plan, cluster.network.router_routes(cluster.plan),
                       records.directory, cluster.spec.underlay_switch)
    cluster.net = IPNet(topo=topo, allocate_IPs=False, use_v6=False, build=False)
    with cluster.stage("network.build_s"):  # shells spawned, links, the underlay bridge
        cluster.net.build()
    for name in [ROUTER, *cluster.node_names]:
        records.record_process(cluster.net[name].shell.pid, f"{name} shell")
    # every FRR process the router starts, its crash-log directory removed by that pid
    cluster.net[ROUTER].on_frr_start = lambda daemon, pid: records.record(
        "frrlog", daemon=daemon, pid=pid)
    cluster.progress("starting router (FRR) and nodes")
    try:
        with cluster.stage("network.start_s"):  # FRR on the router, every shell's prompt
            cluster.net.start()
    except GlobalCleanupRefused:
        raise TestbedError(
            "router: an FRR daemon failed its configuration check (ipmininet printed the "
            "details above); nothing was cleaned globally, the testbed tears down its own"
        ) from None
    for daemon, pid in undo.frr_daemons(records):
        records.record_process(pid, daemon)


def prepare_nodes(cluster: ClusterContext) -> None:
    """Each node as the pod network says (`PodNetwork.node_setup`): links, addresses and
    sysctls over netlink from here, then each node's commands and iptables rules, the
    nodes side by side."""
    rules = []
    for node in cluster.plan.nodes:
        host = cluster.net[node.name]
        mtu = cluster.mtu[node.name] = cluster.network.mtu(up_interface_mtus(host.pid))
        setup = cluster.network.node_setup(cluster.spec, cluster.plan, node, mtu)
        for note in setup.notes:  # what the mode's agent would log, as it would
            cluster.progress(f"warning: {node.name}: {note}")
        cluster.node_notes[node.name] = list(setup.notes)
        cluster.node_setups[node.name] = setup
        apply_links(node.name, host.pid, setup)
        rules.append((node.name, host, (*setup.commands, *setup.iptables)))
    run_rules(rules)
    router = cluster.network.router_setup(cluster.spec, cluster.plan)
    if router is not None:
        cluster.node_setups[ROUTER] = router


def wait_router_routes(cluster: ClusterContext) -> None:
    """staticd installs routes asynchronously: wait until every one is in the kernel."""
    want = {str(r.dst) for r in cluster.network.router_routes(cluster.plan)}
    deadline = time.monotonic() + ROUTE_WAIT_S
    have: set[str] = set()
    while time.monotonic() < deadline:
        have = {route_dst(r) for r in cluster.router_routes()}
        if want <= have:
            return
        time.sleep(0.05)
    raise TestbedError(f"router: FRR did not install routes for {sorted(want - have)} "
                       f"within {ROUTE_WAIT_S:.0f} s (see its logs in the run directory)")


def plan_services(cluster: ClusterContext) -> None:
    """With services: the control plane, the DNS records and the DNS pod (before the
    other pods, whose resolv.conf names it)."""
    if not cluster.spec.services:
        return
    cluster.services = ServiceController(cluster)
    cluster.progress(f"services: {len(cluster.services.services)} (with kube-dns), "
                     f"kube-proxy in {cluster.spec.kube_proxy_mode} mode")
    cluster.services.prepare()


def create_pods(cluster: ClusterContext) -> None:
    """The spec's pods, with their containers."""
    add_pods(cluster, [(n.name, p.name, p.containers) for n, p in cluster.spec.pods])


def start_proxies(cluster: ClusterContext) -> None:
    """With services: readiness probes, endpoints, and kube-proxy on every node, synced."""
    if cluster.services is not None:
        cluster.services.start()


def reach_outside(cluster: ClusterContext) -> None:
    """External hosts and the cloud load balancer, once kube-proxy has synced."""
    cluster.outside = OutsideController(cluster)
    cluster.outside.start()


STEPS: tuple[Step, ...] = (
    Step("checks", check),
    Step("lock", take_lock),
    Step("leftovers", clean_leftovers),
    Step("names", refuse_foreign_names),
    Step("records", open_records),
    Step("network", build_network),
    Step("cpu", cpu.limit),
    Step("links", links.shape),
    Step("nodes", prepare_nodes),
    Step("converge", mesh.start),
    Step("routes", wait_router_routes),
    Step("services", plan_services),
    Step("pods", create_pods),
    Step("proxies", start_proxies),
    Step("outside", reach_outside),
)


def bring_up(cluster: ClusterContext, steps: Sequence[Step] = STEPS) -> None:
    """Run the steps in order, timing each (`timings["<step>_s"]`, and `up_s` for all);
    on any failure, tear down what was made and re-raise."""
    t0 = time.monotonic()
    try:
        for step in steps:
            t = time.monotonic()
            step.run(cluster)
            cluster.timings[f"{step.name}_s"] = time.monotonic() - t
        cluster.timings["up_s"] = time.monotonic() - t0
        cluster.progress(f"cluster {cluster.spec.name} up: {len(cluster.spec.nodes)} nodes, "
                         f"{len(cluster.pods)} pods in {cluster.timings['up_s']:.1f} s")
    except BaseException:
        down.tear_down(cluster)
        raise
