"""What the Services claims share: their cluster, a client, the servers' logs, captures.

The claims of the series' second part run on topologies/services.yaml (the article's
example: `service-test` at 10.3.241.152:80 in front of server-1 and server-2 on 8080,
one per node, a client pod beside server-1), each on a cluster of its own, whatever
topology the suite's other experiments use. Which server served a connection, and the
source address it saw, come from the servers' own access logs (python3 -m http.server),
each request naming its connection (`GET /?probe=<tag>-<seq>`).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from experiments.framework import probes
from experiments.framework.base import Context, retry
from experiments.framework.paths import TOPOLOGIES
from testbed.cluster import Cluster
from testbed.errors import TestbedError
from testbed.kernel import procs
from testbed.measure.services import Connection, parse_access_log, parse_client
from testbed.model.load import load_spec
from testbed.model.spec import ClusterSpec

TOPOLOGY = TOPOLOGIES / "services.yaml"
SERVICE, CLIENT, SERVERS = "service-test", "client", ("server-1", "server-2")
WEB, HEALTH = "web", "health"
PORT = 80


def services_spec() -> ClusterSpec:
    return load_spec(TOPOLOGY)


@contextmanager
def services_cluster(ctx: Context) -> Iterator[Cluster]:
    """The example topology, up for one claim."""
    with Cluster(services_spec(), progress=ctx.progress.note, wiring=ctx.wiring) as c:
        yield c


def vip(c: Cluster) -> str:
    return str(c.services.service(SERVICE).cluster_ip)


def run_client(c: Cluster, tag: str, count: int, interval_s: float = 0.0,
               host: str = SERVICE, timeout_s: float = 1.0) -> tuple[str | None,
                                                                     list[Connection], str]:
    """The client's connections, run to the end: (resolved address, connections, output)."""
    res = c.pod(CLIENT).exec(probes.http_loop(host, PORT, count, interval_s, tag, timeout_s),
                             timeout=count * (interval_s + timeout_s + 1) + 30)
    resolved, conns = parse_client(res.stdout)
    return resolved, conns, res.stdout + res.stderr


def start_client(c: Cluster, tag: str, count: int, interval_s: float,
                 out: Path) -> subprocess.Popen:
    """The client's connections in the background, its lines going to `out`."""
    with open(out, "wb") as f:
        return c.pod(CLIENT).popen(probes.http_loop(SERVICE, PORT, count, interval_s, tag),
                                   stdout=f, stderr=subprocess.STDOUT)


def web_log(c: Cluster, server: str) -> Path:
    return c.records.subdir("containers") / f"{server}_{WEB}.log"


def served(c: Cluster, tag: str) -> dict[str, dict[int, str]]:
    """server -> {seq: the client address it saw} for the probe `tag`."""
    time.sleep(0.2)  # the servers' last log lines
    return {s: parse_access_log(web_log(c, s).read_text(errors="replace"), tag)
            for s in SERVERS}


def keep_logs(ctx: Context, claim: str, c: Cluster) -> None:
    """The servers' access logs, the DNS server's and the kube-proxies' logs, and the
    control plane's state, beside the claim's evidence."""
    containers = c.records.subdir("containers")
    files = {f"{s}_{WEB}.log": web_log(c, s) for s in SERVERS}
    files["kube-dns_dnsmasq.log"] = containers / "kube-dns_dnsmasq.log"
    for node in c.node_names:
        files[f"kube-proxy-{node}.log"] = c.services.proxy_log(node)
        files[f"syncs-{node}.jsonl"] = c.services.dir / f"syncs-{node}.jsonl"
    files["state.json"] = c.services.dir / "state.json"
    for name, path in files.items():
        if path.exists():
            ctx.raw(f"{claim}/{name}", path.read_text(errors="replace"))


def nat_table(c: Cluster, node: str, counters: bool = False) -> str:
    res = c.exec_node(node, ["iptables-save", "-t", "nat", *(["-c"] if counters else [])])
    if not res.ok:
        raise TestbedError(f"iptables-save on {node}: {res.stderr.strip()}")
    return res.stdout


def conntrack(c: Cluster, node: str) -> str:
    """The node's TCP connection-tracking table, as `conntrack -L` prints it."""
    return c.exec_node(node, ["conntrack", "-L", "-p", "tcp"]).stdout


class Capture:
    """tcpdump in a node (or the router), writing a pcap into the run's records."""

    def __init__(self, c: Cluster, node: str, interface: str, name: str) -> None:
        self.c, self.node = c, node
        self.dropped = 0  # packets the kernel dropped for tcpdump, known once stopped
        directory = c.records.subdir("captures")
        self.pcap = directory / f"{name}.pcap"
        self.log = directory / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = c.popen_node(node, ["tcpdump", "-i", interface, "-n", "-U",
                                            "--immediate-mode", "-Z",
                                            "root", "-w", str(self.pcap)],
                                     stdout=log, stderr=log)
        ready = retry(lambda: self.log.read_text(errors="replace"),
                      lambda text: "listening on" in text or self.proc.poll() is not None)
        if "listening on" not in ready:
            raise TestbedError(f"tcpdump in {node} did not start: {ready.strip()[:300]}")

    def stop(self) -> str:
        """Stop it (as Ctrl-C would: the file is complete) and return the packets as
        `tcpdump -n -r` prints them."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                procs.stop_popen(self.proc)
        if self.proc in self.c.node_processes:
            self.c.node_processes.remove(self.proc)
        self.dropped = dropped(self.log.read_text(errors="replace"))
        res = self.c.exec_node(self.node, ["tcpdump", "-n", "-r", str(self.pcap)])
        return res.stdout


def dropped(log: str) -> int:
    """Packets the kernel dropped for tcpdump (its closing words on stderr: "N packets
    dropped by kernel"): a capture that lost some cannot say a packet was not there."""
    m = re.search(r"(\d+) packets? dropped by kernel", log)
    return int(m.group(1)) if m else 0


def summary(conns: list[Connection]) -> dict[str, Any]:
    ok = sum(c.ok for c in conns)
    return {"connections": len(conns), "succeeded": ok, "failed": len(conns) - ok}


def keep_capture(ctx: Context, claim: str, name: str, capture: Capture, text: str) -> None:
    """A capture as tcpdump printed it and as it took it (the pcap), in raw/<claim>/."""
    ctx.raw(f"{claim}/capture-{name}.txt", text)
    ctx.run.write(f"raw/{claim}/capture-{name}.pcap", capture.pcap.read_bytes())
