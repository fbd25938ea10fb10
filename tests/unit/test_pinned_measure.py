"""Pins the ping and iperf3 parsers' refusals at their boundaries, so that mutation testing
(`make mutate`) finds no change that keeps them passing: what a self-contradicting ping
summary is (loss against the counts within 1 %, RTTs in order, TTLs in 1..255), what
iperf3 JSON is not a measurement, and the exact message of each refusal (it is what a
run's error row says)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from testbed.errors import TestbedError
from testbed.measure.iperf import parse_iperf3_json
from testbed.measure.ping import parse_ping

# -- ping ------------------------------------------------------------------------------------


def ping_text(tx: int, rx: int, loss: str, rtt: str | None = "0.040/0.050/0.070/0.010",
              ttls: tuple[int, ...] = ()) -> str:
    lines = ["PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data."]
    lines += [f"64 bytes from 10.0.0.2: icmp_seq={i + 1} ttl={t} time=0.05 ms"
              for i, t in enumerate(ttls)]
    lines += ["", "--- 10.0.0.2 ping statistics ---",
              f"{tx} packets transmitted, {rx} received, {loss}% packet loss, time 10ms"]
    if rtt is not None:
        lines.append(f"rtt min/avg/max/mdev = {rtt} ms")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("tx, rx, loss", [
    (2, 1, "49.7"),  # printf's rounding: within 1 % of what the counts say
    (2, 1, "50.3"),
    (2, 1, "50.5"),  # exactly 1 % off
    (200, 199, "0.505"),  # under 1 %: within 0.01 points
    (3, 2, "33.3333"),
    (1, 0, "100"),
])
def test_ping_a_loss_within_one_percent_of_the_counts_is_accepted(tx: int, rx: int,
                                                                  loss: str) -> None:
    rtt = None if rx == 0 else "0.040/0.050/0.070/0.010"
    assert parse_ping(ping_text(tx, rx, loss, rtt)).loss_pct == float(loss)


@pytest.mark.parametrize("tx, rx, loss", [
    (2, 1, "50.6"), (2, 1, "49.4"), (200, 199, "0.515"), (1, 0, "100.5"),
])
def test_ping_a_loss_the_counts_contradict_is_refused(tx: int, rx: int, loss: str) -> None:
    rtt = None if rx == 0 else "0.040/0.050/0.070/0.010"
    with pytest.raises(TestbedError) as err:
        parse_ping(ping_text(tx, rx, loss, rtt))
    assert str(err.value) == f"ping: {float(loss):g} % loss contradicts {rx} received of {tx}"


def test_ping_rtts_from_zero_are_accepted() -> None:
    r = parse_ping(ping_text(2, 2, "0", "0.000/0.000/0.010/0.000"))
    assert (r.rtt_min_ms, r.rtt_avg_ms, r.rtt_max_ms, r.rtt_mdev_ms) == (0.0, 0.0, 0.01, 0.0)


def test_ping_an_rtt_line_without_a_reply_is_refused() -> None:
    with pytest.raises(TestbedError) as err:
        parse_ping(ping_text(1, 0, "100", "0.040/0.050/0.070/0.010"))
    assert str(err.value) == ("ping: rtt min/avg/max/mdev 0.04/0.05/0.07/0.01 make no sense "
                              "for 0 replies")


@pytest.mark.parametrize("ttl", [1, 64, 255])
def test_ping_ttls_in_range(ttl: int) -> None:
    assert parse_ping(ping_text(1, 1, "0", ttls=(ttl,))).ttl == ttl


@pytest.mark.parametrize("ttl", [0, 256])
def test_ping_ttls_out_of_range(ttl: int) -> None:
    with pytest.raises(TestbedError) as err:
        parse_ping(ping_text(1, 1, "0", ttls=(ttl,)))
    assert str(err.value) == f"ping: reply TTLs [{ttl}] outside 1..255"


@pytest.mark.parametrize("text, message", [
    ("", "ping: no statistics summary in output (empty output)"),
    ("ping: unknown host\nmore\n", "ping: no statistics summary in output: ping: unknown host"),
    ("0 packets transmitted, 0 received, time 0ms\n",
     "ping: no packets were transmitted (0 packets transmitted, 0 received)"),
], ids=["empty", "unknown-host", "nothing-sent"])
def test_ping_refusals_say_why(text: str, message: str) -> None:
    with pytest.raises(TestbedError) as err:
        parse_ping(text)
    assert str(err.value) == message


# -- iperf3 ----------------------------------------------------------------------------------

DOC: dict[str, Any] = {
    "start": {"test_start": {"protocol": "TCP", "num_streams": 1}},
    "end": {"sum_sent": {"seconds": 10.0, "bits_per_second": 2e9, "retransmits": 3},
            "sum_received": {"seconds": 10.0, "bits_per_second": 1e9},
            "cpu_utilization_percent": {"host_total": 12.5, "remote_total": 7.25}}}


def doc(path: str = "", value: Any = None, delete: bool = False) -> str:
    d = copy.deepcopy(DOC)
    if path:
        *keys, last = path.split("/")
        node = d
        for k in keys:
            node = node[k]
        if delete:
            del node[last]
        else:
            node[last] = value
    return json.dumps(d)


def test_iperf_every_field() -> None:
    r = parse_iperf3_json(doc())
    assert (r.sent_bps, r.received_bps, r.retransmits, r.duration_s, r.protocol, r.streams,
            r.cpu_client_pct, r.cpu_server_pct) == (2e9, 1e9, 3, 10.0, "TCP", 1, 12.5, 7.25)


@pytest.mark.parametrize("path, value, field, expected", [
    ("end/sum_received/bits_per_second", 0, "received_bps", 0.0),  # nothing arrived: a rate
    ("end/sum_sent/bits_per_second", 0.5, "sent_bps", 0.5),
    ("end/sum_received/seconds", 0.5, "duration_s", 0.5),
    ("end/cpu_utilization_percent", {"host_total": 0.0, "remote_total": 0.5},
     "cpu_client_pct", 0.0),
    ("end/cpu_utilization_percent", {"host_total": 0.0, "remote_total": 0.5},
     "cpu_server_pct", 0.5),
    ("end/cpu_utilization_percent", 5, "cpu_client_pct", None),
], ids=["zero-rate", "small-rate", "half-second", "zero-cpu", "small-cpu", "cpu-not-a-dict"])
def test_iperf_small_numbers_are_numbers(path: str, value: Any, field: str, expected: Any
                                         ) -> None:
    assert getattr(parse_iperf3_json(doc(path, value)), field) == expected


@pytest.mark.parametrize("text, message", [
    ("", "iperf3: output is not JSON (Expecting value) (empty output)"),
    ("not   json\n" + "x" * 100, "iperf3: output is not JSON (Expecting value): 'not json "
     + "x" * 71 + "'"),
    ("[]", "iperf3: expected a JSON object, got list"),
    (doc("start", delete=True), "iperf3: output has no start (test did not complete?)"),
    (doc("start", {"version": "iperf 3.12"}),
     "iperf3: output has no start.test_start (test did not complete?)"),
    (doc("end/sum_sent", {}), "iperf3: output has no end.sum_sent (test did not complete?)"),
    (doc("end/sum_sent/bits_per_second", "fast"),
     "iperf3: output has no numeric end.sum_sent.bits_per_second"),
    (doc("end/sum_received/bits_per_second", True),
     "iperf3: output has no numeric end.sum_received.bits_per_second"),
    (doc("end/sum_received/bits_per_second", -1),
     "iperf3: end.sum_received.bits_per_second is -1, not a rate"),
    (doc("end/sum_received/seconds", "10"),
     "iperf3: output has no numeric end.sum_received.seconds"),
    (doc("end/sum_received/seconds", 0), "iperf3: the test lasted 0 s"),
    (doc("end/sum_sent/retransmits", "3"), "iperf3: '3' retransmits make no sense"),
    (doc("end/sum_sent/retransmits", -1), "iperf3: -1 retransmits make no sense"),
    (doc("start/test_start/protocol", 6),
     "iperf3: output has no start.test_start.protocol/num_streams"),
    (doc("start/test_start/num_streams", "1"),
     "iperf3: output has no start.test_start.protocol/num_streams"),
], ids=["empty", "long-garbage", "list", "no-start", "no-test-start", "empty-sum-sent",
        "rate-text", "rate-bool", "rate-negative", "seconds-text", "seconds-zero",
        "retransmits-text", "retransmits-negative", "protocol-number", "streams-text"])
def test_iperf_refusals_say_why(text: str, message: str) -> None:
    with pytest.raises(TestbedError) as err:
        parse_iperf3_json(text)
    assert str(err.value) == message
