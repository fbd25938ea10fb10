"""kube-proxy's health servers, in the node's network namespace (pkg/proxy/healthcheck):

    one per health-check node port   a LoadBalancer service with externalTrafficPolicy
                                     Local: 200 while this node has a ready endpoint of
                                     it, 503 otherwise (ServiceHealthServer.SyncServices
                                     and SyncEndpoints open, close and update them)
    :10256 /healthz                  the proxy's own health (ProxierHealthServer): 200
                                     while its last sync is recent

The answers themselves are pure (testbed.model.svc.outside); this module only serves them.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Tuple

from testbed.model.svc.outside import PROXY_HEALTH_PORT, proxier_health, service_health
from testbed.model.svc.plan import ServicePort

# (status, headers, body) of one answer
Answer = Tuple[int, Dict[str, str], str]
HEALTH_TIMEOUT_S = 120.0  # --healthz: unhealthy when no sync for this long with work queued


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(port: int, answer: Callable[[str], Answer]) -> _Server:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            code, headers, body = answer(self.path)
            data = body.encode()
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:  # the checks come every second
            pass

    server = _Server(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name=f"health-{port}", daemon=True).start()
    return server


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %z")


class HealthServers:
    """The node's health-check node ports and its 10256 server, kept in step with syncs."""

    def __init__(self, node: str, proxy_port: int = PROXY_HEALTH_PORT) -> None:
        self.node = node
        self.lock = threading.Lock()
        self.local: dict[int, tuple[str, str, int]] = {}  # port -> (ns, name, local eps)
        self.servers: dict[int, _Server] = {}
        self.last_sync = 0.0
        self.proxy_port = proxy_port
        self.proxy_server: _Server | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        """The proxy's own health server, as kube-proxy opens it at start."""
        if self.proxy_port and self.proxy_server is None:
            self.proxy_server = _serve(self.proxy_port, self._proxy_answer)

    def synced(self, services: tuple[ServicePort, ...]) -> None:
        """After a sync: open the ports of new Local services, close those gone, update
        each one's count of ready endpoints on this node."""
        wanted: dict[int, tuple[str, str, int]] = {}
        for sp in services:
            if sp.health_check_node_port and sp.external_local:
                local = sum(1 for e in sp.ready_endpoints() if e.node == self.node)
                ns, name, count = wanted.get(sp.health_check_node_port, (sp.namespace,
                                                                          sp.name, 0))
                wanted[sp.health_check_node_port] = (ns, name, max(count, local))
        with self.lock:
            self.local = wanted
            self.last_sync = time.time()
        for port in set(self.servers) - set(wanted):
            _close(self.servers.pop(port))
        for port in set(wanted) - set(self.servers):
            try:
                self.servers[port] = _serve(port, lambda _path, p=port: self._answer(p))
            except OSError as exc:  # kube-proxy logs it and retries on the next sync
                self.errors.append(f"health check node port {port}: {exc}")

    def _answer(self, port: int) -> Answer:
        with self.lock:
            ns, name, count = self.local.get(port, ("", "", 0))
        return service_health(ns, name, count, self._healthy())

    def _healthy(self) -> bool:
        return time.time() - self.last_sync < HEALTH_TIMEOUT_S if self.last_sync else False

    def _proxy_answer(self, path: str) -> Answer:
        if path.split("?")[0] not in ("/healthz", "/livez"):
            return 404, {"Content-Type": "text/plain"}, "404 page not found\n"
        now = time.time()
        return proxier_health(_stamp(self.last_sync) if self.last_sync else "", _stamp(now),
                              self._healthy())

    def close(self) -> None:
        for server in [*self.servers.values(), *([self.proxy_server] if self.proxy_server
                                                  else [])]:
            _close(server)


def _close(server: _Server) -> None:
    """Stop serving and release the port (a Local service that comes back reopens it)."""
    server.shutdown()
    server.server_close()
