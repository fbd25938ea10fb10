"""The probe programs the claims run in pods, run here on loopback (no root): what they
print is what the verdicts parse."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from experiments.framework import probes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_ask_many_answers_refusals_and_late_servers() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, *probes.tcp_server("127.0.0.1", port,
                                                                   "whoami-a")[1:]],
                              stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == b"listening"
        argv = probes.tcp_ask_many(["127.0.0.1", "127.0.0.2"], port, timeout_s=0.5,
                                   patience_s=0.3)
        started = time.monotonic()
        res = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                             timeout=30)
        lines = [json.loads(line) for line in res.stdout.splitlines()]
        # 127.0.0.2 is loopback too, and the server listens on 127.0.0.1 only: refused
        # after its patience, not at once
        assert lines == [{"host": "127.0.0.1", "ok": True, "out": "reply: whoami-a"},
                         {"host": "127.0.0.2", "ok": False,
                          "out": "error: [Errno 111] Connection refused"}]
        assert time.monotonic() - started >= 0.3
    finally:
        server.kill()
        server.wait()
