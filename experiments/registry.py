"""Every experiment (experiments/catalogue/), listed once, in the articles' order
(`ARTICLE_ORDER`: measurements, the seed article's claims, then those of the series'
second part, Services, third part, traffic from outside, and of other pod networks); the
claims table (experiments/claims.py) is read from it. `REGISTRY` is the suite's order,
the same list with those on the shared cluster first. To add an experiment, write its
module in the catalogue and list its class here. `experiments/run.py --experiment NAME`
picks one by its name. `REGISTRY` is a `testbed.model.plugins.Registry`, as every
plug-in kind's is: looking up an unknown name is a UsageError listing the experiments."""

from __future__ import annotations

from experiments.catalogue.article.docker0_collision import Docker0Collision
from experiments.catalogue.article.gateway_routes import GatewayRoutes
from experiments.catalogue.article.no_masquerade import NoMasquerade
from experiments.catalogue.article.pause_holds_netns import PauseHoldsNetns
from experiments.catalogue.article.port_conflict import PortConflict
from experiments.catalogue.article.shared_localhost import SharedLocalhost
from experiments.catalogue.measurements.compare_modes import PodNetworkComparison
from experiments.catalogue.measurements.faults import Faults
from experiments.catalogue.measurements.reachability import Reachability
from experiments.catalogue.measurements.throughput import Throughput
from experiments.catalogue.modes.calico_bgp import CalicoBgp
from experiments.catalogue.modes.calico_join import CalicoJoin
from experiments.catalogue.modes.host_gw_routes import HostGwRoutes
from experiments.catalogue.modes.kindnet_no_bridge import KindnetNoBridge
from experiments.catalogue.modes.vxlan_mtu import VxlanMtu
from experiments.catalogue.outside.host_port import HostPort
from experiments.catalogue.outside.ingress import Ingress
from experiments.catalogue.outside.lb_node_down import LbNodeDown
from experiments.catalogue.outside.load_balancer import LoadBalancer
from experiments.catalogue.outside.node_ip_refused import NodeIpRefused
from experiments.catalogue.outside.nodeport import NodePortEveryNode
from experiments.catalogue.outside.service_route import ServiceRoute
from experiments.catalogue.outside.traffic_policy import TrafficPolicy
from experiments.catalogue.services.dns_even_split import DnsEvenSplit
from experiments.catalogue.services.kube_proxy_down import KubeProxyDown
from experiments.catalogue.services.network_absent import NetworkAbsent
from experiments.catalogue.services.range_separate import RangeSeparate
from experiments.catalogue.services.readiness import Readiness
from experiments.catalogue.services.rewrite_on_node import RewriteOnNode
from experiments.catalogue.services.userspace_proxy import UserspaceProxy
from experiments.framework.base import SHARED_CLUSTER, Experiment
from testbed.model.plugins import Registry

# every experiment once, the claims in the articles' order: the claims table
# (experiments/claims.py's CLAIMS, claims.csv, the report) follows this order
ARTICLE_ORDER: tuple[Experiment, ...] = (
    Reachability(), Throughput(), Faults(),
    SharedLocalhost(), PortConflict(), PauseHoldsNetns(), Docker0Collision(), GatewayRoutes(),
    NoMasquerade(),
    # the series' second part, Services (on topologies/services.yaml)
    RangeSeparate(), NetworkAbsent(), DnsEvenSplit(), RewriteOnNode(), UserspaceProxy(),
    KubeProxyDown(), Readiness(),
    # the series' third part, traffic from outside (on topologies/outside.yaml)
    ServiceRoute(), NodeIpRefused(), NodePortEveryNode(), LoadBalancer(), LbNodeDown(),
    TrafficPolicy(), Ingress(), HostPort(),
    # other pod networks (topologies/flannel-*.yaml, kindnet.yaml, calico.yaml, racks.yaml)
    HostGwRoutes(), VxlanMtu(), KindnetNoBridge(), CalicoBgp(), CalicoJoin(),
    PodNetworkComparison(),
)
# the suite's order, which users see (--experiment's list): those on the shared cluster
# first, then those with clusters of their own, each in the articles' order, as the
# suite runs them (a stable sort)
REGISTRY: Registry[Experiment] = Registry("experiment", sorted(
    ARTICLE_ORDER, key=lambda e: e.needs != SHARED_CLUSTER))
