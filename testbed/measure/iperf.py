"""Parse iperf3 3.12 JSON output (-J) and build iperf3 command lines.

The exit status of ``iperf3 -J`` is not trustworthy: 3.12 exits 0 even when it cannot connect
and reports the failure only as an "error" key in the JSON, so the parser is what decides.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from testbed.errors import TestbedError


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 client run; ``received_bps`` is the throughput that actually arrived."""

    sent_bps: float
    received_bps: float
    retransmits: int | None  # TCP only; UDP reports no retransmits
    duration_s: float
    protocol: str
    streams: int
    # iperf3's own CPU use over the test, % of one CPU (client: host, server: remote):
    # near 100 % the sender was CPU-bound, which is the answer on an unshaped path but
    # a fidelity question on a shaped one
    cpu_client_pct: float | None = None
    cpu_server_pct: float | None = None

    def metrics(self) -> dict[str, float]:
        """Flat numbers for a results table; values that were not measured are left out."""
        values: dict[str, float | None] = {
            "throughput_bps": self.received_bps,
            "sent_bps": self.sent_bps,
            "retransmits": self.retransmits,
            "cpu_client_pct": self.cpu_client_pct,
            "cpu_server_pct": self.cpu_server_pct,
        }
        return {key: value for key, value in values.items() if value is not None}


def _section(parent: Any, key: str, where: str) -> dict[str, Any]:
    """Return parent[key] as a dict or raise a TestbedError naming the missing JSON path."""
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict) or not value:
        raise TestbedError(f"iperf3: output has no {where}{key} (test did not complete?)")
    return value


def _number(section: dict[str, Any], key: str, where: str) -> float:
    """A rate: a finite number, not negative (JSON may carry NaN, Infinity, -1)."""
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TestbedError(f"iperf3: output has no numeric {where}.{key}")
    if not math.isfinite(value) or value < 0:
        raise TestbedError(f"iperf3: {where}.{key} is {value}, not a rate")
    return float(value)


def parse_iperf3_json(text: str) -> IperfResult:
    """Parse the JSON document of one ``iperf3 -c ... -J`` run; raise TestbedError on failure."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = " ".join(text.split())[:80]
        detail = f": {snippet!r}" if snippet else " (empty output)"
        raise TestbedError(f"iperf3: output is not JSON ({exc.msg}){detail}") from None
    if not isinstance(doc, dict):
        raise TestbedError(f"iperf3: expected a JSON object, got {type(doc).__name__}")
    if "error" in doc:
        message = " ".join(str(doc["error"]).split())
        raise TestbedError(f"iperf3: {message}")

    end = _section(doc, "end", "")
    sent = _section(end, "sum_sent", "end.")
    received = _section(end, "sum_received", "end.")
    test_start = _section(_section(doc, "start", ""), "test_start", "start.")

    retransmits = sent.get("retransmits")
    seconds = received.get("seconds", sent.get("seconds"))
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TestbedError("iperf3: output has no numeric end.sum_received.seconds")
    if not math.isfinite(seconds) or seconds <= 0:
        raise TestbedError(f"iperf3: the test lasted {seconds} s")
    if retransmits is not None and (isinstance(retransmits, bool) or not isinstance(
            retransmits, (int, float)) or not math.isfinite(retransmits) or retransmits < 0):
        raise TestbedError(f"iperf3: {retransmits!r} retransmits make no sense")
    protocol = test_start.get("protocol")
    streams = test_start.get("num_streams")
    if not isinstance(protocol, str) or not isinstance(streams, int):
        raise TestbedError("iperf3: output has no start.test_start.protocol/num_streams")
    return IperfResult(
        sent_bps=_number(sent, "bits_per_second", "end.sum_sent"),
        received_bps=_number(received, "bits_per_second", "end.sum_received"),
        retransmits=int(retransmits) if isinstance(retransmits, (int, float)) else None,
        duration_s=float(seconds),
        protocol=protocol,
        streams=streams,
        cpu_client_pct=_cpu(end, "host_total"),
        cpu_server_pct=_cpu(end, "remote_total"),
    )


def _cpu(end: dict[str, Any], key: str) -> float | None:
    """end.cpu_utilization_percent.<key>, if iperf3 gave a sane one."""
    section = end.get("cpu_utilization_percent")
    value = section.get(key) if isinstance(section, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0:
        return None
    return float(value)


def _whole_seconds(name: str, value: float, minimum: int) -> str:
    """iperf3 3.12 reads -t/-O with atoi(), so "1.5" would silently run for 1 s: refuse it."""
    if value != int(value) or value < minimum:
        raise TestbedError(
            f"iperf3: {name} must be a whole number of seconds >= {minimum}, got {value:g}"
        )
    return str(int(value))


def client_argv(
    server: str,
    port: int = 5201,
    duration_s: float = 3,
    omit_s: float = 0,
    streams: int = 1,
    pin: tuple[int, int] | None = None,
) -> list[str]:
    """Build a TCP client command with JSON output (-J), as an argument list (no shell).
    `pin` (client CPU, server CPU): iperf3's own `-A n,m`, which pins the client to CPU n
    and has the server pin itself to CPU m for this test (over the control connection),
    so runs are comparable and client and server never share a core."""
    if streams < 1:
        raise TestbedError(f"iperf3: streams must be at least 1, got {streams}")
    duration = _whole_seconds("duration", duration_s, 1)
    argv = ["iperf3", "-c", server, "-p", str(port), "-t", duration, "-J"]
    if omit_s:
        argv += ["-O", _whole_seconds("omit", omit_s, 0)]
    if streams > 1:
        argv += ["-P", str(streams)]
    if pin is not None:
        if min(pin) < 0:
            raise TestbedError(f"iperf3: CPUs are numbered from 0, got {pin}")
        argv += ["-A", f"{pin[0]},{pin[1]}"]
    return argv


def server_argv(port: int = 5201, bind: str | None = None) -> list[str]:
    """Build a long-running server command (no -1): the caller stops it by its pid."""
    argv = ["iperf3", "-s", "-p", str(port)]
    if bind:
        argv += ["-B", bind]
    return argv
