"""A CPU share per node (issue 13), as Mininet's `CPULimitedHost(cpu=f)` gives a host one:
a cgroup of the node's own whose CFS bandwidth is `f` of the whole machine. Pure: names
and numbers; testbed.kernel.cgroups writes them.

In a topology file, a default for every node and a node's own, which overrides it:

    cpu: 0.25                       # each node: a quarter of the machine's CPU time
    nodes:
      - {name: node-1, pods: 2, cpu: 0.1}

`f` is a fraction of the machine, not of one core (Mininet's meaning): on a 2-core
machine `cpu: 0.25` is half a core's worth of time per period, whichever cores it runs on.
What runs in the node's cgroup: the node's shell and everything started in the node, the
pods' pause processes, their containers and what is exec'd in them (iperf3 included).
What does not: the kernel's packet processing (softirq work is charged to whichever task
happened to be interrupted, not to the node whose packet it is), and the CNI plugins,
which the runtime runs for the node as kubelet's would run in the node's system slice.
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.model.names import PREFIX

PERIOD_US = 100_000  # Mininet's default period
MIN_QUOTA_US = 1_000  # the kernel's smallest CFS quota


@dataclass(frozen=True)
class CfsBandwidth:
    """One cgroup's CFS period and quota, in microseconds."""

    period_us: int
    quota_us: int

    @property
    def cores(self) -> float:
        """How many cores' worth of time the group may use."""
        return self.quota_us / self.period_us


def bandwidth(fraction: float, cpus: int, period_us: int = PERIOD_US) -> CfsBandwidth:
    """The CFS bandwidth of `fraction` of a `cpus`-core machine, as Mininet's
    `CPULimitedHost.cfsInfo` computes it: the quota is the fraction of every core's time
    in one period; a quota under the kernel's 1 ms minimum lengthens the period instead."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a CPU share is a fraction of the machine in (0, 1], not {fraction}")
    if cpus < 1:
        raise ValueError(f"a machine has at least one CPU, not {cpus}")
    quota = int(period_us * fraction * cpus)
    if quota < MIN_QUOTA_US:
        quota = MIN_QUOTA_US
        period_us = int(quota / fraction / cpus)
    return CfsBandwidth(period_us, quota)


def cgroup_name(node: str) -> str:
    """The node's cgroup, directly under the cpu hierarchy's root: machine-wide, like the
    testbed's interface names, so it carries their prefix."""
    return f"{PREFIX}-{node}"


def describe(fraction: float | None, cpus: int) -> str:
    """`25 % of 2 CPUs (0.50 core)`, for progress lines and pictures."""
    if fraction is None:
        return "unlimited"
    return f"{fraction:.0%} of {cpus} CPU{'s' if cpus != 1 else ''} ({fraction * cpus:.2f} core)"
