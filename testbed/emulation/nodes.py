"""Mininet classes for the nodes and the underlay, made over netlink instead of shell commands.

Why: Mininet configures every interface through its node's shell (ifconfig, ip, brctl:
a round trip of ~1 ms each, a dozen per node), starts one node shell at a time and waits
for each prompt. A hundred nodes spent ~3 s there. Here:

- `NodeHost` starts its shell without waiting for the prompt, so every node's shell
  starts side by side; the first use of a node (a command, a process, a link) waits.
- `NodeLink` makes the node's underlay veth pair with one netlink request from the
  machine's namespace (the node's end created directly in the node), and gives the node
  end its address over a netlink socket in the node: no shell command.
- `UnderlaySwitch` makes the bridge and enslaves its ports in one batch, and at the end
  deletes the bridge with every port in one request (a link group; see `LINK_GROUP`).

The kernel state is the one Mininet and ipmininet make (`tests/integration` compares the
nodes' links, addresses and routes); the objects are still Mininet's, so the CLI and
`node.cmd()` work as before.
"""

from __future__ import annotations

import os
import pty
import select
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Interface, ip_interface
from typing import Any

from mininet.node import Host, OVSBridge

from testbed.emulation.ipmn import IPIntf, IPLink, IPSwitch, Router
from testbed.kernel import netlink as nl
from testbed.kernel import ns
from testbed.kernel.procs import DIE_WITH_PARENT
from testbed.model.names import LINK_GROUP
from testbed.records.journal import FRR_DAEMONS
from testbed.records.undo import delete_links


class NodeHost(Host):
    """A Kubernetes node: a plain Mininet host, started without waiting for its shell.

    ipmininet's IPHost would write hosts files at start after walking the whole network
    through shell commands (O(nodes^2)); nodes run no ipmininet daemons, so `start()` has
    nothing to do. The default route and `lo` are set by the cluster over netlink, so
    Mininet's per-host `configDefault()` (two shell commands) is skipped too.
    """

    _ready = True
    # an argv prefix that starts a process in the node's cpu cgroup (testbed.kernel.cgroups),
    # as Mininet's CPULimitedHost passes `mnexec -g`; () for a node without a CPU share
    run_prefix: tuple[str, ...] = ()

    def startShell(self, mnopts: str | None = None) -> None:  # noqa: N802 - Mininet's API
        """Mininet's startShell, minus the wait for the prompt (see `wait_ready`)."""
        if self.shell:
            return
        opts = ("-cd" if mnopts is None else mnopts) + ("n" if self.inNamespace else "")
        cmd = ["mnexec", opts, "env", "PS1=" + chr(127), "bash", "--norc", "--noediting",
               "-is", "mininet:" + self.name]
        self.master, self.slave = pty.openpty()
        self.shell = self._popen(cmd, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                 close_fds=False)
        self.stdin = os.fdopen(self.master, "r")
        self.stdout = self.stdin
        self.pid = self.shell.pid
        self.pollOut = select.poll()
        self.pollOut.register(self.stdout)
        self.outToNode[self.stdout.fileno()] = self
        self.inToNode[self.stdin.fileno()] = self
        self.execed = False
        self.lastCmd = None
        self.lastPid = None
        self.readbuf = ""
        self._ready = False

    def wait_ready(self) -> None:
        """Wait for the shell's first prompt (its network namespace exists from then on)
        and set it up as Mininet does. Idempotent."""
        if self._ready:
            return
        self._ready = True
        while True:
            data = self.read(1024)
            if data and data[-1] == chr(127):
                break
            if self.shell.poll() is not None:
                raise RuntimeError(f"{self.name}: its shell exited while starting")
            self.pollOut.poll(1000)
        self.waiting = False
        self.cmd("unset HISTFILE; stty -echo; set +m")

    def sendCmd(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self.wait_ready()
        super().sendCmd(*args, **kwargs)

    def popen(self, *args: Any, **kwargs: Any) -> Any:
        self.wait_ready()
        if self.run_prefix and "mncmd" not in kwargs:
            kwargs["mncmd"] = [*self.run_prefix, "mnexec", "-da", str(self.pid)]
        return super().popen(*args, **kwargs)

    def configDefault(self, **_params: Any) -> None:  # noqa: N802
        pass

    def start(self) -> None:
        pass


class GatewayRouter(Router):
    """The cloud gateway: an ipmininet router, IPv4 only, with IPv6 duplicate address
    detection off in its namespace before any interface exists.

    Why: ipmininet's start() polls every 0.5 s until no IPv6 address is "tentative", and
    the kernel gives each interface a link-local address that stays tentative for ~1-2 s.
    The router has no IPv6 to check, so that wait was pure cost at every bring-up.

    Every FRR daemon it starts (ipmininet's configuration checks and daemons, the pod
    network's bgpd) is reported to `on_frr_start` with its pid as it starts, so that
    the run records it and removes its crash-log directory by that pid once it is gone
    (testbed.records.journal). The pid is the daemon's own: mnexec and setpriv exec it,
    and ipmininet runs FRR in the foreground.
    """

    # (daemon, pid) -> None; the cluster sets it to a journal record before start()
    on_frr_start: Callable[[str, int], None] | None = None

    def __init__(self, name: str, **params: Any) -> None:
        super().__init__(name, **params)
        with ns.entered(ns.netns_of(self.pid)):
            for scope in ("all", "default"):
                ns.write_sysctl(f"net.ipv6.conf.{scope}.accept_dad", "0")

    def popen(self, *args: Any, **kwargs: Any) -> Any:
        proc = super().popen(*args, **kwargs)
        daemon = frr_daemon(args[0] if len(args) == 1 else args)
        if daemon is not None and self.on_frr_start is not None:
            self.on_frr_start(daemon, proc.pid)
        return proc


def frr_daemon(command: Any) -> str | None:
    """The FRR daemon a command starts (`bgpd -f ...`, `/usr/lib/frr/zebra -Cf ...`, with
    or without the DIE_WITH_PARENT prefix), or None. Mininet takes a list or a string."""
    argv: Sequence[str] = command.split() if isinstance(command, str) else list(command)
    if tuple(argv[:len(DIE_WITH_PARENT)]) == DIE_WITH_PARENT:
        argv = argv[len(DIE_WITH_PARENT):]
    if not argv:
        return None
    name = os.path.basename(str(argv[0]))
    return name if name in FRR_DAEMONS else None


def _flags(node: Any, name: str) -> int:
    """An interface's flags from the node's own /sys (Mininet remounts it per node)."""
    with open(f"/proc/{node.pid}/root/sys/class/net/{name}/flags") as f:
        return int(f.read(), 16)


class QuietIntf(IPIntf):
    """An ipmininet interface that its link configured over netlink: constructing it runs
    no shell command. Afterwards it behaves as ipmininet's (e.g. `setIP` uses the shell)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._initialising = True
        super().__init__(*args, **kwargs)
        self._initialising = False

    def config(self, ip: str | None = None, **_params: Any) -> dict[str, Any]:
        if ip:
            self.addresses[4] = [ip_interface(ip)]
        return {}

    def isUp(self, setUp: bool = False) -> bool:  # noqa: N802, N803 - Mininet's API
        if self._initialising:
            return True  # the link brought it up
        up = bool(_flags(self.node, self.name) & nl.IFF_UP)
        if setUp and not up:
            with ns.entered(ns.netns_of(self.node.pid)), nl.RtnlSocket() as sock:
                sock.request([nl.link_set(self.name, up=True)], [f"{self.name} up"])
            up = True
        return up

    def _refresh_addresses(self) -> None:
        if not self._initialising:
            super()._refresh_addresses()


class NodeLink(IPLink):
    """A node's underlay link: node end `<node>-eth0` with its address, switch end in the
    machine's namespace, both up; made with two netlink requests instead of Mininet's
    `ip link add` and ~6 more shell commands."""

    def __init__(self, node1: Any, node2: Any, **kwargs: Any) -> None:
        params1 = kwargs.get("params1") or {}
        self._node_ip = IPv4Interface(params1["ip"]) if params1.get("ip") else None
        kwargs.setdefault("cls1", QuietIntf)
        kwargs.setdefault("cls2", QuietIntf)
        super().__init__(node1, node2, **kwargs)

    def makeIntfPair(self, intfname1: str, intfname2: str, addr1: str | None = None,  # noqa: N802
                     addr2: str | None = None, node1: Any = None, node2: Any = None,
                     deleteIntfs: bool = True) -> None:  # noqa: N803
        assert node1 is not None and node2 is not None and not node2.inNamespace
        if isinstance(node1, NodeHost):
            node1.wait_ready()
        node_netns = ns.netns_of(node1.pid)
        fd = os.open(node_netns, os.O_RDONLY)
        try:
            with nl.RtnlSocket() as root:
                root.request([nl.veth_pair(intfname2, intfname1, fd, mac=addr2,
                                           peer_mac=addr1)],
                             [f"veth pair {intfname2} - {intfname1}"])
        finally:
            os.close(fd)
        with ns.entered(node_netns), nl.RtnlSocket() as node:
            index = node.link_index(intfname1)
            steps = [nl.link_up(index)]
            if self._node_ip is not None:
                steps.insert(0, nl.addr_add(index, self._node_ip.ip, self._node_ip.network,
                                            broadcast=False))
            node.request(steps, [f"{intfname1} setup"] * len(steps))


class OvsUnderlay(OVSBridge):
    """The underlay as an Open vSwitch bridge (`underlay_switch: ovs`), for machines that
    run OVS, as the Mininet VM image does: standalone (it learns as a bridge does, no
    controller), spanning tree off. Mininet makes and deletes it with ovs-vsctl; after a
    crash the run's records name it for `ovs-vsctl del-br`. Not exercised on machines
    without the OVS datapath, where `underlay_switch: ovs` is refused before anything is
    made (testbed.kernel.features)."""

    def __init__(self, name: str, **params: Any) -> None:
        params["stp"] = False
        params.pop("failMode", None)  # OVSBridge makes it standalone
        super().__init__(name, **params)


class UnderlaySwitch(IPSwitch):
    """The underlay: a Linux bridge in the machine's namespace, spanning tree off
    (ipmininet's default of STP on blocks forwarding for ~30 s), made and deleted over
    netlink. Its setup() is skipped: LinuxBridge warns that bridge-nf-call-iptables = 1
    may break it; Kubernetes needs that setting in the nodes, and the testbed never
    changes the machine's own sysctls, so the warning is noise."""

    @classmethod
    def setup(cls) -> None:  # noqa: D102 - see class docstring
        pass

    def port_names(self) -> list[str]:
        return [i.name for i in self.intfList() if self.name in i.name]

    def start(self, _controllers: Any) -> None:
        """Create the bridge, enslave every port, put all in LINK_GROUP, bring it up."""
        if self.stp:
            raise ValueError("UnderlaySwitch runs without spanning tree")
        with nl.RtnlSocket() as sock:
            sock.request([nl.bridge(self.name, up=False, group=LINK_GROUP)],
                         [f"bridge {self.name}"])
            index = sock.link_index(self.name)
            ports = self.port_names()
            sock.request([nl.link_set(p, master=index, up=True, group=LINK_GROUP)
                          for p in ports] + [nl.link_set(self.name, up=True)],
                         [f"port {p}" for p in ports] + [f"{self.name} up"])
        for intf in self.intfList():  # ipmininet's `brctl setpathcost` (STP is off anyway)
            if intf.name in ports:
                with open(f"/sys/class/net/{intf.name}/brport/path_cost", "w") as f:
                    f.write(str(intf.params.get("stp_cost", 1)))

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's API
        """Delete the bridge and its ports (their peers in the nodes go with them)."""
        errors = delete_links([self.name, *self.port_names()], LINK_GROUP)
        if errors:
            raise RuntimeError("; ".join(errors))


def settle_shell(node: Any, timeout_s: float = 1.0) -> None:
    """Make a node's shell safe for Mininet's terminate(), which runs commands in it.

    A Ctrl-C that lands while Mininet waits for a command's output leaves the node
    "waiting", and its next command fails an assertion. Interrupt the command and read
    until the prompt, with a deadline (Mininet's own reader can block for as long as the
    command runs); a shell that does not come back gets no more commands: its private
    mounts live in the node's own mount namespace, which goes with the node anyway.
    """
    if not getattr(node, "waiting", False):
        return
    shell = getattr(node, "shell", None)
    if shell is not None and shell.poll() is None:
        node.sendInt()
        fd = node.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not poller.poll(50):
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            if chunk.endswith(b"\x7f"):  # Mininet's prompt: the shell is idle again
                node.waiting = False
                return
    node.waiting = False
    node.privateDirs = []
