"""A node's kube-proxy: `python -m testbed.proxy.kubeproxy --dir DIR --node NAME ...`,
run inside the node's network namespace, one per node, as a DaemonSet would.

It watches DIR/state.json (testbed.proxy.state) as kube-proxy watches the API server,
and on every change, at most once per `min_sync_period_s` (and at least every
`sync_period_s`), syncs:

    (every mode) answers the health checks of load balancers (testbed.proxy.health)
    iptables   renders the node's whole rule set (testbed.model.svc.iptables) and applies
               it in one `iptables-restore --noflush`; the jumps from the built-in chains
               and the KUBE-PROXY-CANARY chains are ensured first (`-C`, then `-I`)
    nftables   renders the node's `ip kube-proxy` table (testbed.model.svc.nftables) and
               applies it in one `nft -f` transaction
    userspace  opens a proxy socket per service port and carries the connections itself
               (testbed.proxy.userspace), with REDIRECT/DNAT portal rules pointing there

Like kube-proxy, it leaves its rules in place when it stops: in the iptables and
nftables modes the kernel goes on forwarding service traffic without it. `--cleanup`
removes a mode's rules and exits (kube-proxy --cleanup), for a change of mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from testbed.kernel.files import write_whole
from testbed.model.svc import iptables as ipt
from testbed.model.svc import nftables as nft
from testbed.model.svc import userspace as us
from testbed.model.svc.plan import ServicePort
from testbed.proxy.health import HealthServers
from testbed.proxy.state import (
    STATE,
    ProxyState,
    ProxyStatus,
    append_line,
    status_file,
    syncs_file,
)
from testbed.proxy.userspace import UserspaceProxier

POLL_S = 0.05
FULL_SYNC_S = 3600.0  # proxyutil.FullSyncPeriod: a full sync at least this often
IPTABLES_WAIT = ["-w", "5"]


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)


def must(argv: list[str], stdin: str | None = None) -> str:
    res = run(argv, stdin)
    if res.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv[:3])}: {res.stderr.strip()[:400]}")
    return res.stdout


def ensure_chain(table: str, chain: str) -> None:
    """EnsureChain: create it unless it exists."""
    if run(["iptables", *IPTABLES_WAIT, "-t", table, "-S", chain]).returncode != 0:
        must(["iptables", *IPTABLES_WAIT, "-t", table, "-N", chain])


def ensure_rule(table: str, chain: str, rule: str, position: str = "I") -> None:
    """EnsureRule: add the rule unless `-C` finds it (at the top, or appended)."""
    args = shlex.split(rule)
    if run(["iptables", *IPTABLES_WAIT, "-t", table, "-C", chain, *args]).returncode == 0:
        return
    where = ["-I", chain, "1"] if position == "I" else ["-A", chain]
    must(["iptables", *IPTABLES_WAIT, "-t", table, *where, *args])


def delete_rule(table: str, chain: str, rule: str) -> None:
    args = shlex.split(rule)
    while run(["iptables", *IPTABLES_WAIT, "-t", table, "-D", chain, *args]).returncode == 0:
        pass


def save_chains(table: str) -> list[str]:
    """The chains of a table now (from iptables-save)."""
    out = run(["iptables-save", "-t", table]).stdout
    return [line[1:].split()[0] for line in out.splitlines() if line.startswith(":")]


def write_sysctl(key: str, value: str) -> None:
    with open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
        f.write(value)


class KubeProxy:
    """One node's kube-proxy in one mode."""

    def __init__(self, directory: Path, node: str, node_ip: str, mode: str) -> None:
        self.dir, self.node, self.node_ip, self.mode = directory, node, node_ip, mode
        # what the last sync left, for the next (partial) one
        self.nat_chains: frozenset[str] | None = None  # iptables: our service chains
        self.synced: dict[tuple[str, str], ServicePort] = {}  # iptables: as written
        self.table: nft.Table | None = None  # nftables: the per-service part
        self.config_used: ipt.ProxyConfig | None = None
        self.last_full = -1e9
        self.full = True  # whether the last sync was a full one
        self.previous: dict[str, set[str]] = {}  # UDP service port -> endpoint IPs
        self.userspace = UserspaceProxier() if mode == "userspace" else None
        self.status = ProxyStatus(node=node, pid=os.getpid(), mode=mode, generation=-1)
        self.health = HealthServers(node)
        self.started = False

    def config(self, state: ProxyState) -> ipt.ProxyConfig:
        return ipt.ProxyConfig(node=self.node, node_ip=self.node_ip,
                               cluster_cidr=state.cluster_cidr,
                               random_fully=state.random_fully)

    def start(self) -> None:
        """What kube-proxy does once at start: its health server, the canaries, the
        jumps, route_localnet."""
        self.health.start()
        if self.mode == "iptables":
            write_sysctl("net.ipv4.conf.all.route_localnet", "1")
            for table in ("mangle", "nat", "filter"):
                run(["iptables", *IPTABLES_WAIT, "-t", table, "-N", ipt.CANARY])
            for table, chain, rule in ipt.jump_rules(ipt.ProxyConfig(node=self.node)):
                ensure_chain(table, rule.split()[-1])
                ensure_rule(table, chain, rule)
        elif self.mode == "userspace":
            write_sysctl("net.ipv4.conf.all.route_localnet", "1")
            for table, chain, position, rule in us.jump_rules():
                ensure_chain(table, rule.split()[-1])
                ensure_rule(table, chain, rule, position)
        self.started = True

    def sync(self, state: ProxyState) -> str:
        """Apply `state`: a full sync at start and every FULL_SYNC_S, partial ones (only
        what changed) in between, as kube-proxy; returns the payload applied."""
        if not self.started:
            self.start()
        config = self.config(state)
        now = time.monotonic()
        self.full = (now - self.last_full >= FULL_SYNC_S or config != self.config_used)
        if self.mode == "iptables":
            if self.nat_chains is None:
                self.nat_chains = frozenset(save_chains("nat"))
            unchanged = () if self.full else [
                key for key, sp in _by_port(state.services).items() if self.synced.get(key) == sp]
            done = ipt.render_sync(state.services, config, self.nat_chains, unchanged)
            payload = done.payload
            must(["iptables-restore", *IPTABLES_WAIT, "--noflush"], payload)
            self.nat_chains, self.synced = done.active_chains, _by_port(state.services)
            self.clear_stale_udp(state.services)
        elif self.mode == "nftables":
            if self.full or self.table is None:
                first = self.table is None
                listing = run(["nft", "list", "table", nft.FAMILY, nft.TABLE]).stdout
                chains, sets = nft.listed_objects(listing)
                payload, self.table = nft.render_full(
                    state.services, config, state.service_cidr, chains, sets, first)
            else:
                payload, self.table = nft.render_partial(state.services, config, self.table)
            if payload:
                must(["nft", "-f", "-"], payload)
            self.clear_stale_udp(state.services)
        else:
            self.full = True
            assert self.userspace is not None
            ports = self.userspace.sync(state.services)
            self.status = dataclasses.replace(self.status, proxy_ports=ports)
            payload = us.render(state.services, ports, self.node_ip)
            must(["iptables-restore", *IPTABLES_WAIT, "--noflush"], payload)
        if self.full:
            self.last_full = now
        self.config_used = config
        return payload

    def clear_stale_udp(self, services: tuple[ServicePort, ...]) -> None:
        """kube-proxy deletes the conntrack entries of UDP endpoints that went away, or
        replies would keep flowing to them (`conntrack -D --orig-dst VIP --dst-nat IP`)."""
        now: dict[str, set[str]] = {}
        for sp in services:
            if sp.protocol == "UDP":
                now[f"{sp.cluster_ip}:{sp.port}"] = {e.ip for e in sp.ready_endpoints()}
        for key, ips in self.previous.items():
            for ip in ips - now.get(key, set()):
                run(["conntrack", "-D", "--orig-dst", key.split(":")[0], "--dst-nat", ip,
                     "-p", "udp"])
        self.previous = now


def _by_port(services: tuple[ServicePort, ...]) -> dict[tuple[str, str], ServicePort]:
    return {(sp.key, sp.protocol): sp for sp in services}


def cleanup(mode: str) -> None:
    """Remove a mode's rules and chains from this node (kube-proxy --cleanup)."""
    if mode == "nftables":
        run(["nft", "delete", "table", nft.FAMILY, nft.TABLE])
        return
    if mode == "iptables":
        for table, chain, rule in ipt.jump_rules(ipt.ProxyConfig(node="")):
            delete_rule(table, chain, rule)
        owned = {"filter": {ipt.KUBE_SERVICES, ipt.KUBE_EXTERNAL_SERVICES, ipt.KUBE_FORWARD,
                            ipt.KUBE_NODEPORTS, ipt.KUBE_PROXY_FIREWALL, ipt.KUBE_FIREWALL,
                            ipt.CANARY},
                 "nat": {ipt.KUBE_SERVICES, ipt.KUBE_NODEPORTS, ipt.KUBE_POSTROUTING,
                         ipt.KUBE_MARK_MASQ, ipt.CANARY},
                 "mangle": {ipt.CANARY}}
    else:
        for table, chain, _, rule in us.jump_rules():
            delete_rule(table, chain, rule)
        owned = {"filter": set(us.FILTER_CHAINS), "nat": set(us.NAT_CHAINS)}
    for table, chains in owned.items():
        present = [c for c in save_chains(table)
                   if c in chains or (mode == "iptables" and ipt.is_service_chain(c))]
        if present:
            payload = "\n".join([f"*{table}", *(f":{c} - [0:0]" for c in present),
                                 *(f"-X {c}" for c in present), "COMMIT"]) + "\n"
            must(["iptables-restore", *IPTABLES_WAIT, "--noflush"], payload)


def serve(proxy: KubeProxy) -> None:
    """Watch the state file; sync on change (rate-limited) and periodically."""
    state_path = proxy.dir / STATE
    seen: tuple[int, int] | None = None
    last_sync = -1e9
    pending: ProxyState | None = None
    while True:
        try:
            st = os.stat(state_path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        now = time.monotonic()
        if stamp is not None and stamp != seen:
            seen = stamp
            try:
                pending = ProxyState.from_json(state_path.read_text())
            except (OSError, ValueError, KeyError) as exc:
                print(f"kube-proxy {proxy.node}: unreadable state: {exc}", file=sys.stderr)
        current = pending
        if current is not None and (
                current.generation != proxy.status.generation
                or now - last_sync >= current.sync_period_s) and \
                now - last_sync >= current.min_sync_period_s:
            last_sync = now
            t0 = time.monotonic()
            error = ""
            rules = 0
            try:
                payload = proxy.sync(current)
                rules = payload.count("\n")
                proxy.health.synced(current.services)
                if proxy.health.errors:
                    error = "; ".join(proxy.health.errors)
                    proxy.health.errors.clear()
            except Exception as exc:  # noqa: BLE001 - a failed sync is reported and retried
                error = f"{type(exc).__name__}: {exc}"
                print(f"kube-proxy {proxy.node}: sync failed: {error}", file=sys.stderr,
                      flush=True)
            took = time.monotonic() - t0
            proxy.status = dataclasses.replace(
                proxy.status, generation=proxy.status.generation if error
                else current.generation, syncs=proxy.status.syncs + 1, last_sync_s=took,
                rules=rules, error=error)
            write_whole(status_file(proxy.dir, proxy.node), proxy.status.to_json())
            append_line(syncs_file(proxy.dir, proxy.node), {
                "generation": current.generation, "t": time.time(), "sync_s": took,
                "services": len(current.services), "rules": rules, "full": proxy.full,
                "error": error})
        time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kube-proxy (testbed)")
    ap.add_argument("--dir", type=Path, required=True, help="the services directory")
    ap.add_argument("--node", required=True)
    ap.add_argument("--node-ip", default="")
    ap.add_argument("--mode", choices=["iptables", "nftables", "userspace"], required=True)
    ap.add_argument("--cleanup", action="store_true", help="remove the mode's rules, exit")
    args = ap.parse_args(argv)
    if args.cleanup:
        cleanup(args.mode)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # rules stay, as kube-proxy's
    serve(KubeProxy(args.dir, args.node, args.node_ip, args.mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
