"""Every experiment of the default suite, in the order it runs: measurements first, then
the article's claims, then those of the series' second part (Services) and third part
(traffic from outside), each on a cluster of its own. `experiments/run.py --experiment
NAME` picks one by its name. `REGISTRY` is a `testbed.model.plugins.Registry`, as every
plug-in kind's is: looking up an unknown name is a UsageError listing the experiments."""

from __future__ import annotations

from experiments.base import Experiment
from experiments.compare_modes import PodNetworkComparison
from experiments.docker0_collision import Docker0Collision
from experiments.faults import Faults
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

REGISTRY: Registry[Experiment] = Registry("experiment", (
    Reachability(), Throughput(), Faults(),
    SharedLocalhost(), PortConflict(), PauseHoldsNetns(), GatewayRoutes(), NoMasquerade(),
    Docker0Collision(), *SERVICES_CLAIMS, *OUTSIDE_CLAIMS, *MODE_CLAIMS,
    PodNetworkComparison(),
))
