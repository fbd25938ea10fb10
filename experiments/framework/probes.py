"""Tiny probe programs run inside pods and hosts: argument lists for `python3 -c`.

Each prints one line a test can read and exits 0 on success, 1 on failure, so the
evidence of a claim is what the kernel did, in the words of the errno it returned.
"""

from __future__ import annotations

PY = "python3"

_TCP_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
print("listening", flush=True)
while True:
    c, peer = s.accept(); c.sendall(sys.argv[3].encode()); c.close()
"""

_TCP_CLIENT = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print("reply:", s.recv(200).decode()); sys.exit(0)
except OSError as e:
    print("error:", e); sys.exit(1)
"""

_TCP_ASK_MANY = """
import json, socket, sys, time
port, timeout, patience = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
for host in sys.argv[4:]:
    start = time.monotonic()
    while True:
        try:
            s = socket.create_connection((host, port), timeout=timeout)
            out, ok = "reply: " + s.recv(200).decode(), True
            s.close()
        except ConnectionRefusedError as e:
            if time.monotonic() - start < patience:  # a server still starting
                time.sleep(0.1)
                continue
            out, ok = "error: %s" % e, False
        except OSError as e:
            out, ok = "error: %s" % e, False
        break
    print(json.dumps({"host": host, "ok": ok, "out": out}), flush=True)
"""

_BIND_ONCE = """
import socket, sys
s = socket.socket()
try:
    s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); print("bound", sys.argv[2]); sys.exit(0)
except OSError as e:
    print("error:", e); sys.exit(1)
"""

_UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1])))
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print("from", peer[0], flush=True)
    try:
        s.sendto(b"echo from " + sys.argv[2].encode() + b" seen " + peer[0].encode(), peer)
    except OSError as e:
        print("reply failed:", e, flush=True)
"""

_UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(float(sys.argv[3]))
s.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
try:
    print("reply:", s.recvfrom(2048)[0].decode()); sys.exit(0)
except OSError as e:
    print("error:", e); sys.exit(1)
"""

_HTTP_LOOP = r"""
import json, socket, sys, time
host, port, count, interval, tag, timeout = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                             float(sys.argv[4]), sys.argv[5], float(sys.argv[6]))
path, vhost = sys.argv[7], sys.argv[8] or host
try:
    ip = socket.gethostbyname(host)
except OSError as e:
    print(json.dumps({"resolved": None, "error": str(e)}), flush=True); sys.exit(1)
print(json.dumps({"resolved": ip, "name": host}), flush=True)
failed = 0
for i in range(count):
    t, start = time.time(), time.monotonic()
    rec = {"seq": i, "t": t}
    try:
        s = socket.create_connection((ip, port), timeout=timeout)
        s.sendall(("GET %s?probe=%s-%d HTTP/1.0\r\nHost: %s\r\n\r\n"
                   % (path, tag, i, vhost)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        rec["ok"] = data.startswith(b"HTTP/")
        if rec["ok"]:
            rec["status"] = int(data.split(None, 2)[1])
        else:
            rec["error"] = "no HTTP answer"
    except OSError as e:
        rec["ok"], rec["error"] = False, "%s: %s" % (type(e).__name__, e)
    rec["ms"] = (time.monotonic() - start) * 1000
    failed += not rec["ok"]
    print(json.dumps(rec), flush=True)
    time.sleep(max(0.0, interval - (time.monotonic() - start)))
sys.exit(1 if failed else 0)
"""


def tcp_server(host: str, port: int, message: str) -> list[str]:
    """Serve `message` to every TCP connection on host:port (runs until stopped)."""
    return [PY, "-c", _TCP_SERVER, host, str(port), message]


def tcp_client(host: str, port: int, timeout_s: float = 2.0) -> list[str]:
    """Connect, print `reply: <message>` (exit 0) or `error: <errno text>` (exit 1)."""
    return [PY, "-c", _TCP_CLIENT, host, str(port), str(timeout_s)]


def tcp_ask_many(hosts: list[str], port: int, timeout_s: float = 1.0,
                 patience_s: float = 2.0) -> list[str]:
    """Connect to each host's port in turn, one process for all (a process per probe was
    most of the time of a probe matrix): a JSON line each, `{"host", "ok", "out"}` with
    `out` as tcp_client prints it; a refused connection is tried again for `patience_s`
    (a server still starting), anything else is the answer."""
    return [PY, "-c", _TCP_ASK_MANY, str(port), str(timeout_s), str(patience_s), *hosts]


def bind_once(host: str, port: int) -> list[str]:
    """Try to bind and listen: `bound <port>` (exit 0) or `error: <errno text>` (exit 1)."""
    return [PY, "-c", _BIND_ONCE, host, str(port)]


def udp_echo(port: int, name: str) -> list[str]:
    """Log each datagram's source address (`from <ip>`) and answer with what it saw."""
    return [PY, "-c", _UDP_ECHO, str(port), name]


def udp_ask(host: str, port: int, timeout_s: float = 1.0) -> list[str]:
    """Send one datagram; print the answer (exit 0) or `error: timed out` (exit 1)."""
    return [PY, "-c", _UDP_ASK, host, str(port), str(timeout_s)]


def http_loop(host: str, port: int, count: int, interval_s: float, tag: str,
              timeout_s: float = 1.0, path: str = "/", vhost: str = "") -> list[str]:
    """Resolve `host` once (through the pod's resolv.conf), then make `count` HTTP/1.0
    requests, each on a new connection, `GET <path>?probe=<tag>-<seq>` (the servers'
    access logs name the seq) with `Host: <vhost or host>`, one every `interval_s`: a
    JSON line each (seq, t, ok, status, ms, error)."""
    return [PY, "-c", _HTTP_LOOP, host, str(port), str(count), str(interval_s), tag,
            str(timeout_s), path, vhost]
