"""Node CPU shares (testbed.model.cpu) on a running network: bring-up step `cpu`, after
the network and before anything runs in a node.

Each node with a share gets a cpu cgroup of its own (recorded before it is made, removed
at teardown once its processes are gone), its CFS bandwidth read back to confirm the
kernel took it, and the node's shell moved in. From then on the node's processes start
through `cgexec` into it (NodeHost.run_prefix), and so do its pods' pause processes,
containers and exec'd commands (Pod.run_prefix).
"""

from __future__ import annotations

import os

from testbed.cluster.context import ClusterContext
from testbed.errors import TestbedError
from testbed.kernel import cgroups
from testbed.model.cpu import bandwidth, cgroup_name, describe


def limit(cluster: ClusterContext) -> None:
    """Every node with a CPU share in its own group; says what it did."""
    limited = [n for n in cluster.spec.nodes if n.cpu is not None]
    if not limited:
        return
    hierarchy, why = cgroups.find()
    if hierarchy is None:  # preflight refuses this first; a changed machine lands here
        raise TestbedError(f"node CPU shares: {why}")
    cluster.cpu_hierarchy = hierarchy
    cpus = os.cpu_count() or 1
    for node in limited:
        group = cgroup_name(node.name)
        want = bandwidth(node.cpu, cpus)
        cluster.records.record("cgroup", path=str(hierarchy.path(group)))
        cgroups.create(hierarchy, group, want.period_us, want.quota_us)
        period, quota = cgroups.read_bandwidth(hierarchy, group)
        if (period, quota) != (want.period_us, want.quota_us):
            raise TestbedError(f"{node.name}: the kernel holds CFS bandwidth {quota}/{period} "
                               f"us, not the {want.quota_us}/{want.period_us} us asked for")
        host = cluster.net[node.name]
        host.wait_ready()
        cgroups.move(hierarchy, group, host.shell.pid)
        host.run_prefix = cgroups.prefix(group)
        cluster.cpu_groups[node.name] = group
    cluster.progress(f"cpu: {len(limited)} node(s) limited ("
                     + "; ".join(f"{n.name} {describe(n.cpu, cpus)}" for n in limited) + ")")


def usage(cluster: ClusterContext, node: str) -> dict[str, int]:
    """A limited node's cpu.stat (throttled periods and time); {} without a share."""
    group = cluster.cpu_groups.get(node)
    if group is None or cluster.cpu_hierarchy is None:
        return {}
    return cgroups.stat(cluster.cpu_hierarchy, group)
