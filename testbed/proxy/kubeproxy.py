"""A node's kube-proxy: `python -m testbed.proxy.kubeproxy --dir DIR --node NAME ...`,
run inside the node's network namespace, one per node, as a DaemonSet would.

It watches DIR/state.json (testbed.proxy.common.state) as kube-proxy watches the API server,
and on every change, at most once per `min_sync_period_s` (and at least every
`sync_period_s`), syncs:

    (every mode) answers the health checks of load balancers (testbed.proxy.health)
    and then, through the mode's plug-in (testbed.proxy.modes, one module a mode):
    iptables   renders the node's whole rule set (testbed.model.svc.iptables) and applies
               it in one `iptables-restore --noflush`; the jumps from the built-in chains
               and the KUBE-PROXY-CANARY chains are ensured first (`-C`, then `-I`)
    nftables   renders the node's `ip kube-proxy` table (testbed.model.svc.nftables) and
               applies it in one `nft -f` transaction
    userspace  opens a proxy socket per service port and carries the connections itself
               (testbed.proxy.common.userspace), with REDIRECT/DNAT portal rules pointing there

Like kube-proxy, it leaves its rules in place when it stops: in the iptables and
nftables modes the kernel goes on forwarding service traffic without it. `--cleanup`
removes a mode's rules and exits (kube-proxy --cleanup), for a change of mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

from testbed.kernel.files import write_whole
from testbed.model.svc.config import ProxyConfig
from testbed.model.svc.modes import PROXY_MODES
from testbed.proxy.common.state import (
    STATE,
    ProxyState,
    ProxyStatus,
    append_line,
    status_file,
    syncs_file,
)
from testbed.proxy.health import HealthServers
from testbed.proxy.modes import proxier

POLL_S = 0.05
FULL_SYNC_S = 3600.0  # proxyutil.FullSyncPeriod: a full sync at least this often


class KubeProxy:
    """One node's kube-proxy in one mode: what every mode shares (the health servers,
    when a sync is full, the status); the rest is the mode's plug-in."""

    def __init__(self, directory: Path, node: str, node_ip: str, mode: str) -> None:
        self.dir, self.node, self.node_ip, self.mode = directory, node, node_ip, mode
        self.proxier = proxier(mode, node, node_ip)
        self.config_used: ProxyConfig | None = None
        self.last_full = -1e9
        self.full = True  # whether the last sync was a full one
        self.status = ProxyStatus(node=node, pid=os.getpid(), mode=mode, generation=-1)
        self.health = HealthServers(node)
        self.started = False

    def config(self, state: ProxyState) -> ProxyConfig:
        return ProxyConfig(node=self.node, node_ip=self.node_ip,
                           cluster_cidr=state.cluster_cidr, random_fully=state.random_fully)

    def start(self) -> None:
        """What kube-proxy does once at start: its health server, then the mode's own
        (the canaries, the jumps, route_localnet)."""
        self.health.start()
        self.proxier.start()
        self.started = True

    def sync(self, state: ProxyState) -> str:
        """Apply `state`: a full sync at start and every FULL_SYNC_S, partial ones (only
        what changed) in between, as kube-proxy; returns the payload applied."""
        if not self.started:
            self.start()
        config = self.config(state)
        now = time.monotonic()
        self.full = (not self.proxier.partial_syncs or now - self.last_full >= FULL_SYNC_S
                     or config != self.config_used)
        try:
            payload = self.proxier.sync(state, config, self.full)
        finally:  # the proxy ports it opened, even if its rules failed
            self.status = dataclasses.replace(self.status,
                                              proxy_ports=dict(self.proxier.proxy_ports))
        if self.full:
            self.last_full = now
        self.config_used = config
        return payload


def cleanup(mode: str) -> None:
    """Remove a mode's rules and chains from this node (kube-proxy --cleanup)."""
    proxier(mode, "", "").cleanup()


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
    ap.add_argument("--mode", choices=PROXY_MODES.names, required=True)
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
