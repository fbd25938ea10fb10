"""The legacy userspace proxy: kube-proxy itself carries every service connection.

One listening socket per service port on all of the node's addresses (the kernel picks
the port; the portal rules, testbed.model.svc.userspace, redirect the service's traffic
to it). Per TCP connection: pick an endpoint (round robin, or the client's previous one
with ClientIP affinity), connect to it from the node (so the server sees the node's
address), then copy bytes both ways; as kube-proxy's tryConnect did, a failed endpoint
is skipped for the next (up to four tries). UDP: one socket per client towards its
endpoint, idle for `UDP_IDLE_S` before it is dropped (kube-proxy's --udp-timeout).

Threads rather than asyncio: a few hundred connections at most, and the code reads as
what it emulates. If this process dies, the portal rules stay and point at ports nobody
listens on: connections are refused (the point of claim 6 of the series' part 2).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Sequence

from testbed.model.svc.plan import Endpoint, ServicePort
from testbed.model.svc.userspace import port_key

CONNECT_TIMEOUT_S = 2.0
TRIES = 4
UDP_IDLE_S = 1.0
BUFFER = 65536


class _Balancer:
    """Round robin over ready endpoints, with ClientIP affinity (LoadBalancerRR)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.endpoints: list[Endpoint] = []
        self.next = 0
        self.affinity_s = 0
        self.sticky: dict[str, tuple[Endpoint, float]] = {}

    def update(self, sp: ServicePort) -> None:
        with self.lock:
            eps = sp.ready_endpoints()
            if eps != self.endpoints:
                self.endpoints, self.next = eps, 0
                self.sticky = {c: v for c, v in self.sticky.items() if v[0] in eps}
            self.affinity_s = sp.affinity_timeout_s

    def pick(self, client: str) -> Endpoint | None:
        with self.lock:
            if not self.endpoints:
                return None
            now = time.monotonic()
            if self.affinity_s and client in self.sticky:
                ep, last = self.sticky[client]
                if now - last < self.affinity_s:
                    self.sticky[client] = (ep, now)
                    return ep
            ep = self.endpoints[self.next % len(self.endpoints)]
            self.next += 1
            if self.affinity_s:
                self.sticky[client] = (ep, now)
            return ep


class _ProxySocket:
    """One service port's listening socket and the threads serving it."""

    def __init__(self, sp: ServicePort) -> None:
        self.protocol = sp.protocol
        self.balancer = _Balancer()
        self.balancer.update(sp)
        kind = socket.SOCK_STREAM if sp.protocol == "TCP" else socket.SOCK_DGRAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        if kind == socket.SOCK_STREAM:
            self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        target = self._serve_tcp if kind == socket.SOCK_STREAM else self._serve_udp
        threading.Thread(target=target, daemon=True).start()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _serve_tcp(self) -> None:
        while not self.closed:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(conn, peer[0]), daemon=True).start()

    def _carry(self, conn: socket.socket, client: str) -> None:
        upstream = None
        for _ in range(TRIES):
            ep = self.balancer.pick(client)
            if ep is None:
                break
            try:
                upstream = socket.create_connection((ep.ip, ep.port), CONNECT_TIMEOUT_S)
                break
            except OSError:
                continue
        if upstream is None:
            conn.close()
            return
        upstream.settimeout(None)
        _pipe(conn, upstream)

    def _serve_udp(self) -> None:
        sessions: dict[tuple[str, int], tuple[socket.socket, list[float]]] = {}
        lock = threading.Lock()

        def replies(client: tuple[str, int], back: socket.socket, seen: list[float]) -> None:
            while not self.closed:
                ready, _, _ = select.select([back], [], [], UDP_IDLE_S)
                if not ready:
                    if time.monotonic() - seen[0] > UDP_IDLE_S:
                        break
                    continue
                try:
                    data = back.recv(BUFFER)
                    self.sock.sendto(data, client)
                except OSError:
                    break
            with lock:
                sessions.pop(client, None)
            back.close()

        while not self.closed:
            try:
                data, client = self.sock.recvfrom(BUFFER)
            except OSError:
                return
            with lock:
                session = sessions.get(client)
            if session is None:
                ep = self.balancer.pick(client[0])
                if ep is None:
                    continue
                back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                back.connect((ep.ip, ep.port))
                session = (back, [time.monotonic()])
                with lock:
                    sessions[client] = session
                threading.Thread(target=replies, args=(client, *session), daemon=True).start()
            session[1][0] = time.monotonic()
            with contextlib.suppress(OSError):
                session[0].send(data)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides are done, passing half-closes on."""
    def one_way(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(BUFFER)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=one_way, args=(b, a), daemon=True)
    t.start()
    one_way(a, b)
    t.join()
    a.close()
    b.close()


class UserspaceProxier:
    """The proxy sockets of one node, kept in step with the service ports."""

    def __init__(self) -> None:
        self.sockets: dict[str, _ProxySocket] = {}

    def sync(self, services: Sequence[ServicePort]) -> dict[str, int]:
        """Open, update and close sockets to match `services`; their proxy ports."""
        wanted = {port_key(sp): sp for sp in services}
        for key in list(self.sockets):
            if key not in wanted:
                self.sockets.pop(key).close()
        for key, sp in wanted.items():
            if key in self.sockets:
                self.sockets[key].balancer.update(sp)
            else:
                self.sockets[key] = _ProxySocket(sp)
        return {key: s.port for key, s in self.sockets.items()}

    def close(self) -> None:
        for s in self.sockets.values():
            s.close()
        self.sockets.clear()
