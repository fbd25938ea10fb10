"""Services on a running cluster: the control plane's part, in-process, and a kube-proxy
process on every node.

`ServiceController` plays, for a topology with `services:`,

    the API server        the services with their cluster IPs and node ports
                          (testbed.model.svc.plan.resolve), the DNS service among them
    the endpoints         endpoints from pod labels and readiness; whenever they change,
    controller            the whole set goes to the nodes (`state.json`, see
                          testbed.proxy.common.state)
    kubelet               each pod's resolv.conf and hosts, bind-mounted in the pod's own
                          mount namespace before its containers start; readiness probes
                          (TCP connect or HTTP GET from the pod's node, every period)
    a DaemonSet           one kube-proxy per node (testbed.proxy.kubeproxy), in the
                          topology's mode; stopped, started or switched on request
    cluster DNS           a `kube-dns` pod on the first node running dnsmasq, behind the
                          kube-system/kube-dns service
    ingress controller    with ingresses: an `ingress-nginx` pod on the last node running
                          nginx, behind its LoadBalancer service (testbed.model.svc.outside)

Its thread only probes and publishes; applying rules is each node's kube-proxy's job,
so stopping one (claim 6 of the series' second part) stops exactly what it would.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.cluster.context import ClusterContext
from testbed.cluster.pods import add_pods
from testbed.errors import TestbedError
from testbed.kernel import ns
from testbed.kernel.files import write_whole
from testbed.model.load.services import spec_warnings
from testbed.model.spec import ContainerSpec, PodSpec, ReadinessProbe
from testbed.model.svc import dns, ingress, outside, plan
from testbed.model.svc.plan import PodState, ServicePort
from testbed.pods.pause import Pod, bind_files
from testbed.proxy.common.state import STATE, ProxyState, read_status, status_file

TICK_S = 0.05
SYNC_WAIT_S = 60.0
READY_WAIT_S = 30.0
DNS_PROBE = ReadinessProbe(port=plan.DNS_PORT, period_s=1, failures=1)


@dataclass
class _Probe:
    """A pod's readiness as kubelet's prober tracks it."""

    probe: ReadinessProbe
    ready: bool = False  # a pod with a readiness probe starts unready
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    last: str = ""  # the last result, for messages


class ServiceController:
    """See the module docstring. Created by the bring-up step `services`, started by
    `proxies` (after the pods), stopped first at teardown."""

    def __init__(self, cluster: ClusterContext) -> None:
        self.cluster = cluster
        self.spec = cluster.spec
        self.services = plan.resolve(self.spec)
        self.mode = self.spec.kube_proxy_mode
        self.dir: Path = cluster.records.subdir("services")
        self.dns_records = self.dir / "dns-records.hosts"
        self.generation = 0
        self.view: tuple[ServicePort, ...] | None = None
        self.states: list[PodState] | None = None  # the pods the view was made from
        self.pod_specs: dict[str, PodSpec] = {p.name: p for _, p in self.spec.pods}
        self.probes: dict[str, _Probe] = {}
        # (generation, wall-clock time, each pod's readiness) of every state published
        self.history: list[tuple[int, float, dict[str, bool]]] = []
        self.proxies: dict[str, Any] = {}  # node -> its kube-proxy process
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- before the pods -----------------------------------------------------------------

    def prepare(self) -> None:
        """The DNS server's records; the DNS pod; warnings about the services."""
        for warning in spec_warnings(self.spec):
            self.cluster.progress(f"warning: {warning}")
        write_whole(self.dns_records, dns.records(self.services))
        self.pod_specs[plan.DNS_POD] = PodSpec(
            plan.DNS_POD, (ContainerSpec("dnsmasq", tuple(dns.dnsmasq_command(
                self.dns_records))),), labels=plan.DNS_LABELS, readiness=DNS_PROBE)
        system = [(self.spec.nodes[0].name, plan.DNS_POD)]
        if self.spec.ingresses:  # the ingress controller, on the last node
            self.pod_specs[outside.CONTROLLER_POD] = self.ingress_controller()
            system.append((self.spec.nodes[-1].name, outside.CONTROLLER_POD))
        add_pods(self.cluster, [(node, pod, self.pod_specs[pod].containers)
                                for node, pod in system])

    def ingress_controller(self) -> PodSpec:
        """The ingress controller's pod: nginx with the configuration the topology's
        ingresses render to (testbed.model.svc.ingress), ready once its /healthz answers."""
        workdir = self.cluster.records.subdir("ingress")
        conf = workdir / "nginx.conf"
        write_whole(conf, ingress.render(self.spec.ingresses, self.services, str(workdir)))
        command = ("nginx", "-p", str(workdir), "-c", str(conf), "-e",
                   str(workdir / "error.log"))
        return PodSpec(outside.CONTROLLER_POD, (ContainerSpec("controller", command),),
                       labels=outside.CONTROLLER_LABELS, readiness=ReadinessProbe(
                           port=outside.CONTROLLER_HEALTH_PORT, path="/healthz", period_s=1,
                           failures=1))

    def pod_created(self, pod: Pod) -> None:
        """kubelet's part before a pod's containers start: its resolv.conf and hosts."""
        assert pod.ip is not None
        files = self.cluster.records.subdir("services", "pods", pod.name)
        hosts = files / "hosts"
        write_whole(hosts, dns.hosts_file(str(pod.ip.ip), pod.name))
        mounts = {str(hosts): "/etc/hosts"}
        if pod.name != plan.DNS_POD:  # the DNS pod uses the node's (dnsPolicy Default)
            resolv = files / "resolv.conf"
            write_whole(resolv, dns.resolv_conf(plan.dns_ip(self.spec.service_cidr)))
            mounts[str(resolv)] = "/etc/resolv.conf"
        bind_files(pod, mounts)
        spec = self.pod_specs.get(pod.name)
        with self.lock:
            if spec is not None and spec.readiness is not None:
                self.probes[pod.name] = _Probe(spec.readiness, next_at=time.monotonic()
                                               + spec.readiness.initial_delay_s)

    # -- after the pods ------------------------------------------------------------------

    def start(self) -> None:
        """Publish the endpoints, start probing and one kube-proxy per node; wait until
        the probed pods are ready (or the wait is over) and every node has synced."""
        self.publish()
        self._thread = threading.Thread(target=self._loop, name="services", daemon=True)
        self._thread.start()
        # readiness first: kube-proxy's first sync then has the ready endpoints, rather
        # than a second sync a min-sync-period (1 s) later
        self.wait_ready(READY_WAIT_S)
        for node in self.cluster.node_names:
            self.start_proxy(node)
        self.wait_synced()

    def stop(self) -> None:
        """Stop probing (the kube-proxies are node processes: teardown stops them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the endpoints ---------------------------------------------------------------------

    def pod_states(self) -> list[PodState]:
        out = []
        with self.lock:
            for pod in list(self.cluster.pods.values()):
                spec = self.pod_specs.get(pod.name)
                alive = pod.pause.poll() is None and all(
                    c.running for c in pod.containers.values())
                probe = self.probes.get(pod.name)
                ready = alive and (probe.ready if probe is not None else True)
                out.append(PodState(pod.name, pod.node, str(pod.ip.ip) if pod.ip else "",
                                    spec.labels if spec else (), ready))
        return out

    def publish(self) -> bool:
        """Write the node's view if it changed; whether it did."""
        with self.lock:
            states = self.pod_states()
            if states == self.states:  # the view depends on nothing else
                return False
            self.states = states
            view = plan.proxy_view(self.services, states)
            if view == self.view:
                return False
            self.view = view
            self.generation += 1
            self._write()
            self.history.append((self.generation, time.time(),
                                 {p.name: p.ready for p in states}))
            return True

    def _write(self) -> None:
        assert self.view is not None
        state = ProxyState(generation=self.generation, mode=self.mode, services=self.view,
                           cluster_cidr=str(self.spec.cluster_cidr),
                           service_cidr=str(self.spec.service_cidr))
        write_whole(self.dir / STATE, state.to_json())

    def force_sync(self) -> int:
        """Publish the same services again under a new generation, so every kube-proxy
        syncs in full once more (what its periodic resync does); the generation."""
        with self.lock:
            self.generation += 1
            self._write()
            return self.generation

    def forget_pod(self, name: str) -> None:
        with self.lock:
            self.probes.pop(name, None)
        self.publish()

    def register(self, pod: str, spec: PodSpec) -> None:
        """Labels and readiness of a pod added while the cluster runs."""
        with self.lock:
            self.pod_specs[pod] = spec

    # -- kubelet's prober ------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self._probe_due()
                self.publish()
            except Exception as exc:  # noqa: BLE001 - keep probing; say what went wrong
                self.cluster.progress(f"services: {type(exc).__name__}: {exc}")

    def _probe_due(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [(name, p) for name, p in self.probes.items() if p.next_at <= now]
        for name, p in due:
            pod = self.cluster.pods.get(name)
            if pod is None or pod.ip is None:
                continue
            ok, p.last = probe_once(self.cluster.node_netns(pod.node), str(pod.ip.ip),
                                    p.probe)
            with self.lock:
                if ok:
                    p.successes, p.failures = p.successes + 1, 0
                    if p.successes >= p.probe.successes:
                        p.ready = True
                else:
                    p.successes, p.failures = 0, p.failures + 1
                    if p.failures >= p.probe.failures:
                        p.ready = False
                p.next_at = now + p.probe.period_s

    def readiness(self) -> dict[str, bool]:
        """Each pod's readiness now."""
        return {s.name: s.ready for s in self.pod_states()}

    def wait_ready(self, timeout_s: float) -> list[str]:
        """Wait for the probed pods to be ready; the ones still unready (and say so)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                unready = [n for n, p in self.probes.items() if not p.ready]
            if not unready or time.monotonic() > deadline:
                break
            time.sleep(TICK_S)
        for name in unready:
            self.cluster.progress(f"warning: pod {name} is not ready after {timeout_s:g} s "
                                  f"({self.probes[name].last or 'not probed yet'})")
        return unready

    def wait_synced(self, timeout_s: float = SYNC_WAIT_S) -> None:
        """Until every running kube-proxy has applied the current state."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.publish()
            late = {}
            for node in self.proxies:
                status = read_status(self.dir, node)
                if status is None or status.generation != self.generation \
                        or status.mode != self.mode or status.pid != self.proxies[node].pid:
                    late[node] = status.error if status else "no status yet"
                    if status is not None and status.error and status.syncs >= 2:
                        raise TestbedError(f"kube-proxy on {node} cannot sync: "
                                           f"{status.error} (log: {self.proxy_log(node)})")
            if not late:
                return
            if time.monotonic() > deadline:
                raise TestbedError("kube-proxy did not sync within "
                                   f"{timeout_s:g} s on " + "; ".join(
                                       f"{n} ({e or 'still syncing'})" for n, e in late.items()))
            for node, proc in self.proxies.items():
                if proc.poll() is not None:
                    log = self.proxy_log(node).read_text(errors="replace")[-400:].strip()
                    raise TestbedError(f"kube-proxy on {node} exited: {log or 'no output'}")
            time.sleep(TICK_S)

    # -- the kube-proxy DaemonSet ---------------------------------------------------------

    def proxy_log(self, node: str) -> Path:
        return self.dir / f"kube-proxy-{node}.log"

    def proxy_command(self, node: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "testbed.proxy.kubeproxy", "--dir", str(self.dir),
                "--node", node, "--node-ip", str(self.cluster.node_plan(node).underlay_ip.ip),
                "--mode", self.mode, *extra]

    def start_proxy(self, node: str) -> None:
        """Start the node's kube-proxy (it syncs from the state file on its own)."""
        if node in self.proxies and self.proxies[node].poll() is None:
            raise TestbedError(f"kube-proxy already runs on {node}")
        status_file(self.dir, node).unlink(missing_ok=True)  # a dead one's is not news
        with open(self.proxy_log(node), "ab") as log:
            self.proxies[node] = self.cluster.popen_node(node, self.proxy_command(node),
                                                         stdout=log, stderr=log)

    def kill_proxy(self, node: str) -> int:
        """Kill the node's kube-proxy as a crash would (SIGKILL); its rules stay. Its pid."""
        proc = self.proxies.pop(node, None)
        if proc is None:
            raise TestbedError(f"no kube-proxy runs on {node}")
        proc.kill()
        proc.wait()
        if proc in self.cluster.node_processes:
            self.cluster.node_processes.remove(proc)
        return proc.pid

    def set_mode(self, mode: str) -> None:
        """Switch every node's kube-proxy to `mode`: stop it, remove the old mode's rules
        (kube-proxy --cleanup), start it in the new mode, wait for the sync."""
        if mode == self.mode:
            return
        for node in list(self.proxies):
            self.kill_proxy(node)
        for node in self.cluster.node_names:
            res = self.cluster.exec_node(node, self.proxy_command(node, "--cleanup"))
            if not res.ok:
                raise TestbedError(f"kube-proxy --cleanup on {node}: {res.stderr.strip()[:300]}")
        with self.lock:
            self.mode = mode
            self.generation += 1
            self._write()
        for node in self.cluster.node_names:
            self.start_proxy(node)
        self.wait_synced()

    def dns_ip(self) -> str:
        return str(plan.dns_ip(self.spec.service_cidr))

    def service(self, key: str) -> Any:
        """A resolved service by `ns/name` (or `name` in the default namespace)."""
        key = key if "/" in key else f"default/{key}"
        for svc in self.services:
            if svc.key == key:
                return svc
        raise TestbedError(f"no service {key} (services: "
                           f"{', '.join(s.key for s in self.services)})")


def probe_once(netns: str, ip: str, probe: ReadinessProbe) -> tuple[bool, str]:
    """One readiness check from the node (kubelet's place): TCP connect, or HTTP GET
    with a status in 200-399. The socket is made in the node's namespace."""
    with ns.entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(probe.timeout_s)
        sock.connect((ip, probe.port))
        if probe.path is None:
            return True, "tcp connect succeeded"
        sock.sendall(f"GET {probe.path} HTTP/1.0\r\nHost: {ip}:{probe.port}\r\n"
                     "User-Agent: kube-probe/testbed\r\n\r\n".encode())
        head = sock.recv(64).decode(errors="replace")
        parts = head.split()
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return 200 <= code < 400, f"HTTP {code or head[:20]!r}"
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
