"""The interactive shell of `testbed up`: Mininet's and ipmininet's CLI plus pods.

A module of its own, imported only when a cluster is up: it needs Mininet's CLI, which
`testbed validate` and `testbed clean` do not.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any

from mininet.log import lg

from testbed.cluster import Cluster
from testbed.emulation.ipmn import IPCLI
from testbed.errors import TestbedError
from testbed.model.names import ROUTER
from testbed.model.svc.modes import PROXY_MODES


def err(message: str) -> None:
    """An error message of the CLI: always on stderr, whatever Mininet's logger does."""
    print(message, file=sys.stderr, flush=True)


class KubeCLI(IPCLI):
    """Mininet's CLI (nodes, sh, py, pingall, ...) plus pods.

    A pod's name works like a node's: `pod-1 ip addr` runs in pod-1's namespaces, and
    pod, node and router names in a command are replaced by their addresses.
    """

    prompt = "testbed> "

    def __init__(self, cluster: Cluster, **kwargs: Any) -> None:
        self.cluster = cluster
        self.failures: list[str] = []
        self._failed = False
        super().__init__(cluster.net, **kwargs)

    def getLocals(self) -> dict[str, Any]:  # noqa: N802 - Mininet's name
        """`py` sees the cluster too: `py cluster.pod('pod-1').ip`."""
        return {**super().getLocals(), "cluster": self.cluster}

    def parseline(self, line: str) -> tuple[str | None, str | None, str]:
        """Split at the first space: cmd.Cmd would split `pod-1` into `pod` and `-1`."""
        line = line.strip()
        if not line:
            return None, None, line
        if line[0] == "?":
            line = "help " + line[1:]
        first, _, rest = line.partition(" ")
        return first, rest.strip(), line

    # -- exit-status bookkeeping for --script ---------------------------------
    def onecmd(self, line: str) -> bool:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return False
        self._failed = False
        # Mininet prints command output (node commands, py, pingall) through its
        # logger, on stderr; a command's output belongs on stdout, like a pod command's.
        handlers = [h for h in lg.handlers if hasattr(h, "stream")]
        saved = [h.stream for h in handlers]
        for h in handlers:
            h.stream = sys.stdout
        try:
            stop = super().onecmd(line)
        except TestbedError as exc:
            err(f"*** {exc}")
            self._failed = True
            stop = False
        finally:
            for h, stream in zip(handlers, saved):
                h.stream = stream
        if self._failed:
            self.failures.append(stripped)
        return bool(stop)

    def fail(self) -> None:
        self._failed = True

    # -- pods -------------------------------------------------------------------
    def do_pods(self, _line: str) -> None:
        """List pods: name, node, IP, network namespace, pause pid, containers."""
        rows = self.cluster.describe()
        header = ["pod", "node", "ip", "netns", "pause_pid", "containers"]
        widths = [max(len(h), *(len(str(r[h])) for r in rows)) if rows else len(h)
                  for h in header]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in rows:
            print("  ".join(str(r[h]).ljust(w) for h, w in zip(header, widths)))

    def do_pod(self, line: str) -> None:
        """Run a command in a pod: pod <name> <command> (names become addresses)."""
        name, _, rest = line.strip().partition(" ")
        if not name or not rest.strip():
            err("usage: pod <name> <command>")
            self.fail()
            return
        self._run_in_pod(name, rest)

    # -- services -------------------------------------------------------------------
    def _services(self) -> Any:
        if self.cluster.services is None:
            raise TestbedError("this topology has no services")
        return self.cluster.services

    def do_services(self, _line: str) -> None:
        """List services: type, cluster IP, ports, endpoints (pod, ready), kube-proxy mode."""
        controller = self._services()
        view = {(sp.namespace, sp.name, sp.port, sp.protocol): sp for sp in controller.view}
        print(f"kube-proxy mode: {controller.mode}; DNS {controller.dns_ip()}")
        for svc in controller.services:
            ports = []
            endpoints: dict[str, bool] = {}
            for p in svc.ports:
                node_port = f" node port {p.node_port}" if p.node_port else ""
                ports.append(f"{p.port}->{p.target_port}/{p.protocol}{node_port}")
                sp = view.get((svc.namespace, svc.name, p.port, p.protocol))
                for e in sp.endpoints if sp else ():
                    endpoints[f"{e.pod} {e.ip}"] = e.ready
            eps = ", ".join(f"{k}{'' if ready else ' (not ready)'}"
                            for k, ready in endpoints.items()) or "none"
            outside = ""
            if svc.load_balancer_ip:
                outside += f"  load balancer {svc.load_balancer_ip}"
            if svc.type != "ClusterIP":
                outside += f"  externalTrafficPolicy {svc.external_traffic_policy}"
            if svc.health_check_node_port:
                outside += f" (health check node port {svc.health_check_node_port})"
            print(f"{svc.key:<28} {svc.type:<12} {str(svc.cluster_ip):<15} "
                  f"{', '.join(ports)}  endpoints: {eps}{outside}")

    def do_lb(self, _line: str) -> None:
        """The cloud load balancer's view: per service port, each node's check state and
        the connections HAProxy sent it."""
        outside = self.cluster.outside
        if outside is None or outside.socket is None:
            err("this cluster has no load balancer (no LoadBalancer service)")
            self.fail()
            return
        addresses = {b.name: f"{b.address}:{b.port} -> node port {b.node_port}, checked on "
                     f"{b.check_port}" for b in outside.backends}
        rows = outside.stats()
        for backend, title in addresses.items():
            print(f"{backend}: {title}")
            for r in rows:
                if r.get("pxname") == backend:
                    print(f"  {r['svname']:<12} {r.get('status', ''):<8} connections "
                          f"{r.get('stot', '0'):<6} last check {r.get('check_status', '')}")

    def do_uplink(self, line: str) -> None:
        """Take a node off the underlay or put it back (as a failed node looks from the
        network): uplink <node> down|up."""
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("down", "up"):
            err("usage: uplink <node> down|up")
            self.fail()
            return
        self.cluster.set_uplink(parts[0], parts[1] == "up")
        print(f"{parts[0]}: underlay port {parts[1]}")

    def do_node(self, line: str) -> None:
        """Stop a node as a power-off does (its and its pods' processes frozen, uplink
        down) or start it again: node <node> stop|start."""
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("stop", "start"):
            err("usage: node <node> stop|start")
            self.fail()
            return
        if parts[1] == "stop":
            print(f"{parts[0]}: stopped, {self.cluster.stop_node(parts[0])} processes frozen")
        else:
            self.cluster.start_node(parts[0])
            print(f"{parts[0]}: started")

    def do_leave(self, line: str) -> None:
        """Delete a node from the pod network where routing daemons follow the nodes
        (calico): its BIRD stops, the others drop it; prints the convergence time:
        leave <node>."""
        self._membership("leave", line.strip())

    def do_join(self, line: str) -> None:
        """Add a node that left back to the pod network; prints the convergence time:
        join <node>."""
        self._membership("join", line.strip())

    def _membership(self, verb: str, node: str) -> None:
        if not node:
            err(f"usage: {verb} <node>")
            self.fail()
            return
        seconds = (self.cluster.leave if verb == "leave" else self.cluster.join)(node)
        print(f"{node} {'left' if verb == 'leave' else 'joined'} the pod network: every "
              f"kernel agreed in {seconds:.2f} s")

    def do_proxymode(self, line: str) -> None:
        """Switch every node's kube-proxy: proxymode iptables|nftables|userspace."""
        mode = line.strip()
        if mode not in PROXY_MODES:
            err(f"usage: proxymode {'|'.join(PROXY_MODES.names)}")
            self.fail()
            return
        self._services().set_mode(mode)
        print(f"kube-proxy: {mode} mode on every node")

    def do_killproxy(self, line: str) -> None:
        """Kill a node's kube-proxy as a crash would (its rules stay): killproxy <node>."""
        pid = self._services().kill_proxy(line.strip())
        print(f"kube-proxy on {line.strip()} (pid {pid}) killed")

    def do_startproxy(self, line: str) -> None:
        """Start a node's kube-proxy again and wait for its sync: startproxy <node>."""
        controller = self._services()
        controller.start_proxy(line.strip())
        controller.wait_synced()
        print(f"kube-proxy on {line.strip()} running and synced")

    def do_addpod(self, line: str) -> None:
        """Add a pod to a running node: addpod <node> <pod>."""
        args = line.split()
        if len(args) != 2:
            err("usage: addpod <node> <pod>")
            self.fail()
            return
        pod = self.cluster.add_pod(args[0], args[1])
        print(f"pod {pod.name} on {pod.node}: {pod.ip} (netns {pod.netns})")

    def do_delpod(self, line: str) -> None:
        """Delete a pod (containers, CNI DEL, pause): delpod <pod>."""
        if not line.strip():
            err("usage: delpod <pod>")
            self.fail()
            return
        self.cluster.remove_pod(line.strip())

    def do_addcontainer(self, line: str) -> None:
        """Start a container in a pod: addcontainer <pod> <name> <command...>."""
        args = shlex.split(line)
        if len(args) < 3:
            err("usage: addcontainer <pod> <name> <command...>")
            self.fail()
            return
        c = self.cluster.add_container(args[0], args[1], args[2:])
        print(f"container {c.name} in pod {args[0]}: pid {c.pid}")

    def do_delcontainer(self, line: str) -> None:
        """Stop and remove a container: delcontainer <pod> <name>."""
        args = line.split()
        if len(args) != 2:
            err("usage: delcontainer <pod> <name>")
            self.fail()
            return
        self.cluster.remove_container(args[0], args[1])

    def do_routes(self, _line: str) -> None:
        """The router's routes to the nodes' pod CIDRs, as FRR installed them."""
        for r in self.cluster.router_routes():
            print(f"{r['dst']} via {r.get('gateway')} dev {r.get('dev')} "
                  f"proto {r.get('protocol')}")

    def do_podpingall(self, _line: str) -> None:
        """Every pod pings every other pod once; prints the loss and fails on any."""
        pods = list(self.cluster.pods.values())
        lost = 0
        for src in pods:
            for dst in pods:
                if src is dst:
                    continue
                res = src.exec(["ping", "-c1", "-W1", self.cluster.endpoint_ip(dst.name)])
                ok = res.ok
                lost += 0 if ok else 1
                print(f"{src.name} -> {dst.name}: {'ok' if ok else 'LOST'}")
        total = len(pods) * (len(pods) - 1)
        print(f"*** Results: {lost}/{total} lost", flush=True)
        if lost:
            self.fail()

    def _substitute(self, args: list[str]) -> list[str]:
        known = set(self.cluster.pods) | set(self.cluster.node_names) | {ROUTER}
        return [self.cluster.endpoint_ip(a) if a in known else a for a in args]

    def _run_in_pod(self, name: str, rest: str) -> None:
        pod = self.cluster.pod(name)
        argv = self._substitute(shlex.split(rest))
        sys.stdout.flush()
        code = subprocess.call([*pod.run_prefix, *pod.nsenter_prefix(), *argv])
        if code != 0:
            self.fail()

    # -- nodes and the machine -------------------------------------------------
    def default(self, line: str) -> None:
        first, args, _ = self.parseline(line)
        if first in self.cluster.pods:
            self._run_in_pod(first, args or "")
            return
        if first in self.mn:
            if not args:
                err(f"*** Please enter a command for node: {first} <cmd>")
                self.fail()
                return
            words = self._substitute(args.split(" "))
            super().default(" ".join([first, *words]))
            status = self.mn[first].cmd("echo $?").strip()
            if status != "0":
                self.fail()
            return
        err(f"*** Unknown command: {line}")
        self.fail()

    def do_sh(self, line: str) -> None:
        """Run a shell command on the machine itself: sh <cmd>."""
        if subprocess.call(line, shell=True) != 0:
            self.fail()
