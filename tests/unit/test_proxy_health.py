"""kube-proxy's health servers (testbed.proxy.health), served on this machine's loopback
on free ports: the answers follow each sync, ports open and close with their services."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from testbed.model.svc.plan import Endpoint, ServicePort
from testbed.proxy.health import HealthServers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str = "/healthz") -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def local_service(port: int, *nodes: str) -> ServicePort:
    return ServicePort("default", "web", "", "TCP", "10.3.0.5", 80, node_port=30081,
                       endpoints=tuple(Endpoint(f"10.0.{i}.2", 8080, n)
                                       for i, n in enumerate(nodes)),
                       load_balancer_ips=("203.0.113.101",), health_check_node_port=port,
                       external_local=True)


def test_health_check_node_port_follows_the_local_endpoints() -> None:
    hc, proxy = free_port(), free_port()
    health = HealthServers("node-1", proxy_port=proxy)
    health.start()
    try:
        assert get(proxy)[0] == 503  # nothing synced yet
        health.synced((local_service(hc, "node-1", "node-2"),))
        code, body = get(hc)
        assert code == 200 and body["localEndpoints"] == 1
        assert body["service"] == {"namespace": "default", "name": "web"}
        assert get(proxy)[0] == 200 and get(proxy)[1]["nodeHealthy"] is True
        health.synced((local_service(hc, "node-2"),))  # no endpoint here any more
        assert get(hc) == (503, {"service": {"namespace": "default", "name": "web"},
                                 "localEndpoints": 0, "serviceProxyHealthy": True})
        health.synced(())  # the service is gone: its port closes, and can open again
        try:
            get(hc)
            raise AssertionError("the health-check port still answers")
        except urllib.error.URLError:
            pass
        health.synced((local_service(hc, "node-1"),))
        assert get(hc)[0] == 200 and not health.errors
    finally:
        health.close()
