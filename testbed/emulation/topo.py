"""The emulated network as an ipmininet topology graph: no kernel state is touched here
(the node, link and switch classes that do it are in testbed.emulation.nodes).

                        router (FRR staticd)
                        10.100.0.1, the pod network's routes (kubenet: one per node)
                            |
      ======================+====================== underlay bridge ktb-ul1 (STP off)
            |                               |
      node-1 10.100.0.2               node-2 10.100.0.3
      cbr0 10.0.0.1/24                cbr0 10.0.1.1/24
       pods 10.0.0.2, .3              pods 10.0.1.2, .3

The underlay is a Linux bridge (no OVS datapath on these machines) with spanning tree off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from testbed.emulation.ipmn import STATIC, IPTopo, RouterConfig, StaticRoute
from testbed.emulation.nodes import (
    GatewayRouter,
    NodeHost,
    NodeLink,
    OvsUnderlay,
    UnderlaySwitch,
)
from testbed.model.addressing import AddressPlan
from testbed.model.names import FRR_TMP, LINUX_BRIDGE, OVS, ROUTER
from testbed.model.names import underlay_switch as switch_name
from testbed.model.podnet import Route


class ClusterTopo(IPTopo):
    """Router, an underlay switch per rack (one without racks) and one Mininet host per
    Kubernetes node, on its rack's switch; the router has an address on every rack."""

    def build(self, plan: AddressPlan, router_routes: Sequence[Route],  # type: ignore[override]
              workdir: Path, underlay_switch: str = LINUX_BRIDGE) -> None:
        # FRR leaves a crash-log directory per process start in /var/tmp/frr: a private
        # tmpfs there, in the router's own mount namespace, vanishes with the router.
        router = self.addRouter(ROUTER, cls=GatewayRouter, config=RouterConfig,
                                cwd=str(workdir / "frr"), use_v6=False, privateDirs=[FRR_TMP])
        router.addDaemon(STATIC, static_routes=[
            StaticRoute(str(r.dst), str(r.via)) for r in router_routes
        ])
        switch_cls = OvsUnderlay if underlay_switch == OVS else UnderlaySwitch
        switches = {}
        segments = [(r.name, r.router_ip) for r in plan.racks] or [("", plan.router_ip)]
        for i, (rack, router_ip) in enumerate(segments):  # the router's link: port 1
            switches[rack] = self.addSwitch(switch_name(i), stp=False, cls=switch_cls)
            self.addLink(router, switches[rack], params1={"ip": str(router_ip)})
        for node in plan.nodes:
            host = self.addHost(node.name, cls=NodeHost,
                                defaultRoute=f"via {plan.router_for(node).ip}")
            self.addLink(host, switches[node.rack], cls=NodeLink,
                         params1={"ip": str(node.underlay_ip)})
        super().build()
