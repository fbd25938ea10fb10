"""The `testbed` command: validate a topology, bring a cluster up with a CLI, clean up.

    testbed validate topologies/two-node.yaml
    sudo testbed up topologies/two-node.yaml                  # interactive
    sudo testbed up topologies/two-node.yaml --script cmds.txt
    sudo testbed up topologies/two-node.yaml -c pods -c 'pod-1 ping -c1 pod-3'
    sudo testbed clean

Exit status: 0 success, 1 a command or the bring-up failed, 2 bad input (topology file or
arguments), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from testbed import procs
from testbed.errors import SpecError, TestbedError


def _build_cli_class() -> type:
    """The CLI class, made on demand: importing Mininet's CLI needs Mininet installed."""
    from mininet.log import lg

    from testbed.cluster import Cluster
    from testbed.ipmn import IPCLI

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
                _err(f"*** {exc}")
                self._failed = True
                stop = False
            finally:
                for h, stream in zip(handlers, saved, strict=True):
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
            print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
            for r in rows:
                print("  ".join(str(r[h]).ljust(w) for h, w in zip(header, widths,
                                                                   strict=True)))

        def do_pod(self, line: str) -> None:
            """Run a command in a pod: pod <name> <command> (names become addresses)."""
            name, _, rest = line.strip().partition(" ")
            if not name or not rest.strip():
                _err("usage: pod <name> <command>")
                self.fail()
                return
            self._run_in_pod(name, rest)

        def do_addpod(self, line: str) -> None:
            """Add a pod to a running node: addpod <node> <pod>."""
            args = line.split()
            if len(args) != 2:
                _err("usage: addpod <node> <pod>")
                self.fail()
                return
            pod = self.cluster.add_pod(args[0], args[1])
            print(f"pod {pod.name} on {pod.node}: {pod.ip} (netns {pod.netns})")

        def do_delpod(self, line: str) -> None:
            """Delete a pod (containers, CNI DEL, pause): delpod <pod>."""
            if not line.strip():
                _err("usage: delpod <pod>")
                self.fail()
                return
            self.cluster.remove_pod(line.strip())

        def do_addcontainer(self, line: str) -> None:
            """Start a container in a pod: addcontainer <pod> <name> <command...>."""
            args = shlex.split(line)
            if len(args) < 3:
                _err("usage: addcontainer <pod> <name> <command...>")
                self.fail()
                return
            c = self.cluster.add_container(args[0], args[1], args[2:])
            print(f"container {c.name} in pod {args[0]}: pid {c.pid}")

        def do_delcontainer(self, line: str) -> None:
            """Stop and remove a container: delcontainer <pod> <name>."""
            args = line.split()
            if len(args) != 2:
                _err("usage: delcontainer <pod> <name>")
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
            known = set(self.cluster.pods) | set(self.cluster.node_names) | {"router"}
            return [self.cluster.endpoint_ip(a) if a in known else a for a in args]

        def _run_in_pod(self, name: str, rest: str) -> None:
            pod = self.cluster.pod(name)
            argv = self._substitute(shlex.split(rest))
            sys.stdout.flush()
            code = subprocess.call(pod.nsenter_prefix() + argv)
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
                    _err(f"*** Please enter a command for node: {first} <cmd>")
                    self.fail()
                    return
                words = self._substitute(args.split(" "))
                super().default(" ".join([first, *words]))
                status = self.mn[first].cmd("echo $?").strip()
                if status != "0":
                    self.fail()
                return
            _err(f"*** Unknown command: {line}")
            self.fail()

        def do_sh(self, line: str) -> None:
            """Run a shell command on the machine itself: sh <cmd>."""
            if subprocess.call(line, shell=True) != 0:
                self.fail()

    return KubeCLI


def cmd_validate(args: argparse.Namespace) -> int:
    from testbed.addressing import plan
    from testbed.spec import load_spec

    spec = load_spec(args.topology)
    p = plan(spec)
    print(f"{args.topology}: valid. cluster {spec.name}: {len(spec.nodes)} nodes, "
          f"{len(spec.pods)} pods; cluster CIDR {spec.cluster_cidr}; "
          f"router {p.router_ip.ip} on {spec.underlay}")
    for n in p.nodes:
        pods = [pod.name for pod in spec.nodes[n.index].pods]
        print(f"  {n.name:<10} {str(n.underlay_ip.ip):<15} pod CIDR {str(n.pod_cidr):<18} "
              f"cbr0 {n.bridge_ip.ip}  pods: {', '.join(pods) or '-'}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from testbed.cluster import Cluster
    from testbed.spec import load_spec

    spec = load_spec(args.topology)
    commands: list[str] | None = None
    if args.command:
        commands = list(args.command)
    elif args.script == "-":
        commands = sys.stdin.read().splitlines()
    elif args.script is not None:
        try:
            commands = Path(args.script).read_text().splitlines()
        except OSError as exc:
            print(f"error: --script {args.script}: {exc.strerror}", file=sys.stderr)
            return 2
    procs.install_interrupt_handlers()
    with Cluster(spec, progress=_say, mininet_log="info" if args.verbose else "output",
                 wiring=args.wiring) as cluster:
        cli_class = _build_cli_class()
        if commands is None:
            _say("type 'help' for commands, 'pods' to list pods, 'exit' to tear down")
            cli = cli_class(cluster)
        else:
            # Mininet's CLI runs a script file given to it, then returns: an empty one,
            # then each line here, with no temporary file to leave behind.
            cli = cli_class(cluster, script=os.devnull)
            for line in commands:
                if cli.onecmd(line):
                    break
        failures = cli.failures
    if failures:
        print(f"error: {len(failures)} command(s) failed: " + "; ".join(failures),
              file=sys.stderr)
        return 1
    return 0


def cmd_clean(_args: argparse.Namespace) -> int:
    from testbed import cleanup, deps

    deps.check_root()
    removed = cleanup.clean()
    if removed:
        print(f"removed the leftovers of {len(removed)} run(s): {', '.join(removed)}")
    else:
        print("nothing to clean: no testbed run left anything behind")
    return 0


def _err(message: str) -> None:
    """An error message of the CLI: always on stderr, whatever Mininet's logger does."""
    print(message, file=sys.stderr, flush=True)


def _say(message: str) -> None:
    print(f"*** {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="testbed", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate", help="check a topology file and print its address plan")
    v.add_argument("topology", type=Path)
    v.set_defaults(func=cmd_validate)
    u = sub.add_parser("up", help="bring a cluster up and open a CLI (or run a script)")
    u.add_argument("topology", type=Path)
    u.add_argument("--script", help="file of CLI commands to run, then tear down ('-': stdin)")
    u.add_argument("-c", "--command", action="append",
                   help="a CLI command to run (repeatable); implies no interactive CLI")
    u.add_argument("-v", "--verbose", action="store_true", help="Mininet's info messages")
    u.add_argument("--wiring", choices=["cni", "fast"], default="cni",
                   help="pod wiring: the real CNI plugins (default, the reference) or the "
                        "same kernel state over netlink, in-process (faster)")
    u.set_defaults(func=cmd_up)
    c = sub.add_parser("clean", help="remove what a crashed run left behind (and nothing else)")
    c.set_defaults(func=cmd_clean)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the cluster was torn down", file=sys.stderr)
        return 130
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
