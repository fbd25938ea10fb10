"""Every experiment of the default suite, in the order it runs: measurements first, then
the article's claims, then those of the series' second part (Services) and third part
(traffic from outside), each on a cluster of its own. `experiments/run.py --experiment
NAME` picks one by its name. `REGISTRY` is a `testbed.model.plugins.Registry`, as every
plug-in kind's is: looking up an unknown name is a UsageError listing the experiments."""

from __future__ import annotations

from experiments.compare_modes import PodNetworkComparison
from experiments.docker0_collision import Docker0Collision
from experiments.faults import Faults
from experiments.framework.base import SHARED_CLUSTER, Experiment
from experiments.gateway_routes import GatewayRoutes
from experiments.mode_claims import MODE_CLAIMS
from experiments.no_masquerade import NoMasquerade
from experiments.out_claims import OUTSIDE_CLAIMS
from experiments.pause_holds_netns import PauseHoldsNetns
from experiments.port_conflict import PortConflict
from experiments.reachability import Reachability
from experiments.shared_localhost import SharedLocalhost
from experiments.svc_claims import SERVICES_CLAIMS
from experiments.throughput import Throughput
from testbed.model.plugins import Registry

# every experiment once, the claims in the articles' order: the claims table
# (experiments/claims.py's CLAIMS, claims.csv, the report) follows this order
ARTICLE_ORDER: tuple[Experiment, ...] = (
    Reachability(), Throughput(), Faults(),
    SharedLocalhost(), PortConflict(), PauseHoldsNetns(), Docker0Collision(), GatewayRoutes(),
    NoMasquerade(), *SERVICES_CLAIMS, *OUTSIDE_CLAIMS, *MODE_CLAIMS,
    PodNetworkComparison(),
)
# the suite's order, which users see (--experiment's list): those on the shared cluster
# first, then those with clusters of their own, each in the articles' order, as the
# suite runs them (a stable sort)
REGISTRY: Registry[Experiment] = Registry("experiment", sorted(
    ARTICLE_ORDER, key=lambda e: e.needs != SHARED_CLUSTER))
