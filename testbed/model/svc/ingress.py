"""The ingress controller's nginx configuration, from the topology's `ingresses:`. Pure.

Rendered the way ingress-nginx's template (rootfs/etc/nginx/template/nginx.tmpl) lays it
out: one `server` per host name (rules without a host go to the catch-all `_` server),
one `location` per path, a location `/` to the default backend (404) where a host has
none, and the access log in ingress-nginx's `upstreaminfo` format, which names the
upstream each request went to. Path types as ingress-nginx maps them
(internal/ingress/controller/location.go, updateServerLocations):

    Exact  /cart     location = /cart
    Prefix /cart     location = /cart  and  location /cart/   (element-wise prefix:
                     /cart and /cart/x match, /cartoon does not)
    Prefix /         location /

Upstreams are the services' cluster IPs and ports, as ingress-nginx routes with the
`nginx.ingress.kubernetes.io/service-upstream: "true"` annotation: kube-proxy then picks
the pod. (Without it ingress-nginx balances over the endpoints itself, in Lua; the
testbed's nginx has no Lua.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from testbed.model.spec import EXACT_PATH, IngressSpec, ServiceSpec
from testbed.model.svc.outside import CONTROLLER_HEALTH_PORT, HTTP_PORT

DEFAULT_SERVER = "_"
DEFAULT_BACKEND = "upstream-default-backend"
# ingress-nginx's log-format-upstream default (internal/ingress/controller/config)
LOG_FORMAT = ("'$remote_addr - $remote_user [$time_local] \"$request\" $status "
              "$body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length "
              "$request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] "
              "$upstream_addr $upstream_response_length $upstream_response_time "
              "$upstream_status $request_id'")


@dataclass(frozen=True)
class Route:
    """One nginx location: a host, an nginx location argument, its upstream."""

    host: str
    location: str  # "= /cart", "/cart/", "/"
    upstream: str  # ns-name-port, or DEFAULT_BACKEND
    target: str  # cluster IP:port, or "" for the default backend
    ingress: str  # ns/name, or "" for the default backend


def routes(ingresses: Sequence[IngressSpec], services: Sequence[ServiceSpec]) -> list[Route]:
    """Every location of every server, in order (hosts sorted; the first ingress to claim
    a host's path keeps it, as ingress-nginx keeps the oldest)."""
    by_key = {s.key: s for s in services}
    taken: dict[tuple[str, str], Route] = {}
    for ing in ingresses:
        for rule in ing.rules:
            host = rule.host or DEFAULT_SERVER
            for p in rule.paths:
                svc = by_key[f"{ing.namespace}/{p.service}"]
                upstream = f"{ing.namespace}-{p.service}-{p.port}"
                target = f"{svc.cluster_ip}:{p.port}"
                if p.path_type == EXACT_PATH:
                    locations = [f"= {p.path}"]
                elif p.path == "/":
                    locations = ["/"]
                else:
                    base = p.path.rstrip("/")
                    locations = [f"= {base}", f"{base}/"]
                for loc in locations:
                    taken.setdefault((host, loc), Route(host, loc, upstream, target, ing.key))
    hosts = sorted({h for h, _ in taken} | {DEFAULT_SERVER})
    out = []
    for host in hosts:
        mine = [r for (h, _), r in taken.items() if h == host]
        if not any(r.location == "/" for r in mine):
            mine.append(Route(host, "/", DEFAULT_BACKEND, "", ""))
        out += sorted(mine, key=lambda r: (r.location.lstrip("= "), r.location))
    return out


def render(ingresses: Sequence[IngressSpec], services: Sequence[ServiceSpec],
           workdir: str) -> str:
    """nginx.conf for the controller pod; logs, pid and temporary files in `workdir`."""
    rs = routes(ingresses, services)
    upstreams = sorted({(r.upstream, r.target) for r in rs if r.target})
    lines = [
        "# The ingress controller (rendered by testbed.model.svc.ingress)",
        "daemon off;",
        "worker_processes 1;",
        f"pid {workdir}/nginx.pid;",
        f"error_log {workdir}/error.log notice;",
        "events { worker_connections 1024; }",
        "http {",
        f"    log_format upstreaminfo {LOG_FORMAT};",
        f"    access_log {workdir}/access.log upstreaminfo;",
        *(f"    {kind}_temp_path {workdir}/tmp-{kind};"
          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "    proxy_http_version 1.1;",
        "    proxy_connect_timeout 5s;",
        "    proxy_next_upstream off;",
    ]
    for name, target in upstreams:
        lines += [f"    upstream {name} {{", f"        server {target};", "    }"]
    for host in sorted({r.host for r in rs}):
        listen = f"{HTTP_PORT} default_server" if host == DEFAULT_SERVER else str(HTTP_PORT)
        lines += ["", "    server {", f"        server_name {host};",
                  f"        listen {listen};"]
        for r in (r for r in rs if r.host == host):
            lines += [f"        location {r.location} {{",
                      f"            set $proxy_upstream_name \"{r.upstream}\";",
                      "            set $proxy_alternative_upstream_name \"\";"]
            if r.target:
                lines += ["            proxy_set_header Host $host;",
                          "            proxy_set_header X-Request-ID $request_id;",
                          "            proxy_set_header X-Real-IP $remote_addr;",
                          "            proxy_set_header X-Forwarded-For $remote_addr;",
                          "            proxy_set_header X-Forwarded-Host $host;",
                          f"            proxy_pass http://{r.upstream};"]
            else:
                lines.append("            return 404 \"default backend - 404\\n\";")
            lines.append("        }")
        lines.append("    }")
    lines += ["", "    server {", f"        listen {CONTROLLER_HEALTH_PORT};",
              "        location = /healthz { return 200 \"ok\\n\"; }", "    }", "}"]
    return "\n".join(lines) + "\n"
