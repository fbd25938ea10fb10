"""Constrained links (testbed.model.links) applied to a running network: bring-up step
`links`, after the network and before the nodes are prepared.

Each end of a shaped uplink gets its qdiscs, as Mininet's TCLink gives both ends of a
link: the node's end in the node (what it sends), the underlay bridge's port in the
machine's namespace (what the node receives; a port the testbed made, gone with it).
Loss goes into netem where the kernel has it, else into two iptables rules in the node.
Nothing is recorded: qdiscs and the node's rules go with the interfaces and namespaces.
"""

from __future__ import annotations

import shlex
import subprocess

from testbed.cluster.context import ClusterContext
from testbed.cluster.outside import switch_port
from testbed.errors import TestbedError
from testbed.kernel import features
from testbed.model.links import loss_rules, tc_commands
from testbed.model.names import underlay_intf


def shape(cluster: ClusterContext) -> None:
    """Every node's uplink as its spec constrains it; says what it did."""
    shaped = [n for n in cluster.spec.nodes if n.uplink.shaped]
    if not shaped:
        return
    netem = False
    if any(n.uplink.loss_pct or n.uplink.delay_ms for n in shaped):
        netem = bool(features.kernel_feature("netem")[0])
    for node in shaped:
        link = node.uplink
        intf = underlay_intf(node.name)
        for argv in tc_commands(intf, link, netem) + ([] if netem else
                                                       loss_rules(intf, link)):
            res = cluster.exec_node(node.name, argv, timeout=20)
            if not res.ok:
                raise TestbedError(f"{node.name}: {shlex.join(argv)}: "
                                   f"{(res.stderr or res.stdout).strip()[:200]}")
        port = switch_port(cluster, node.name)
        for argv in tc_commands(port, link, netem):
            res = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                                 stdin=subprocess.DEVNULL)
            if res.returncode != 0:
                raise TestbedError(f"{port}: {shlex.join(argv)}: {res.stderr.strip()[:200]}")
    how = "netem" if netem else "iptables statistic (no netem in this kernel)"
    cluster.progress(f"links: {len(shaped)} uplink(s) constrained ("
                     + "; ".join(f"{n.name} {n.uplink.describe()}" for n in shaped)
                     + (f"; loss by {how}" if any(n.uplink.loss_pct for n in shaped) else "")
                     + ")")
