"""Unit tests for testbed.measure.iperf: parse real iperf3 3.12 JSON and build command lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.errors import TestbedError
from testbed.measure.iperf import client_argv, parse_iperf3_json, server_argv

DATA = Path(__file__).parent.parent / "data"


def _load(name: str) -> str:
    return (DATA / name).read_text()


# --- real output: `iperf3 -c 127.0.0.1 -p 5399 -J -t 1` against `iperf3 -s -p 5399 -1` --------


def test_tcp_loopback_throughput_is_the_received_sum() -> None:
    result = parse_iperf3_json(_load("iperf3_tcp_loopback.json"))
    assert result.received_bps == pytest.approx(35481524251.269547)
    assert result.sent_bps == pytest.approx(35483191361.103973)
    assert result.retransmits == 0
    assert result.duration_s == pytest.approx(1.00036)
    assert result.protocol == "TCP"
    assert result.streams == 1


def test_tcp_loopback_metrics() -> None:
    metrics = parse_iperf3_json(_load("iperf3_tcp_loopback.json")).metrics()
    assert metrics == pytest.approx(
        {
            "throughput_bps": 35481524251.269547,
            "sent_bps": 35483191361.103973,
            "retransmits": 0,
            "cpu_client_pct": 99.52063707332954,  # end.cpu_utilization_percent.host_total
            "cpu_server_pct": 78.65177749410468,  # ... remote_total
        }
    )


def test_cpu_figures_that_make_no_sense_are_left_out() -> None:
    doc = json.loads(_load("iperf3_tcp_loopback.json"))
    doc["end"]["cpu_utilization_percent"] = {"host_total": -1, "remote_total": "x"}
    metrics = parse_iperf3_json(json.dumps(doc)).metrics()
    assert "cpu_client_pct" not in metrics and "cpu_server_pct" not in metrics


# --- real output: `iperf3 -c 127.0.0.1 -p 5399 -u -b 10M -J -t 1` (UDP has no retransmits) ----


def test_udp_loopback_has_no_retransmits() -> None:
    result = parse_iperf3_json(_load("iperf3_udp_loopback.json"))
    assert result.protocol == "UDP"
    assert result.retransmits is None
    assert result.received_bps == pytest.approx(10037549.466392849)
    assert result.sent_bps == pytest.approx(10038221.9102556)
    assert result.duration_s == pytest.approx(1.000174)
    assert "retransmits" not in result.metrics()
    assert result.metrics()["throughput_bps"] == pytest.approx(10037549.466392849)


# --- error cases ---------------------------------------------------------------------------


def test_real_connection_refused_json_raises_with_the_iperf3_message() -> None:
    # real output of `iperf3 -c 127.0.0.1 -p 5398 -J -t 1` with no server; iperf3 exited 0
    with pytest.raises(TestbedError) as info:
        parse_iperf3_json(_load("iperf3_error_refused.json"))
    assert str(info.value) == "iperf3: unable to connect to server: Connection refused"


@pytest.mark.parametrize(
    "text", ["", "iperf3: error - unable to connect to server: Connection refused\n", "{"]
)
def test_non_json_raises(text: str) -> None:
    with pytest.raises(TestbedError, match="^iperf3: output is not JSON"):
        parse_iperf3_json(text)


def test_json_that_is_not_an_object_raises() -> None:
    with pytest.raises(TestbedError, match="expected a JSON object"):
        parse_iperf3_json("[]")


@pytest.mark.parametrize("missing", ["sum_sent", "sum_received"])
def test_missing_end_sum_raises(missing: str) -> None:
    doc = json.loads(_load("iperf3_tcp_loopback.json"))
    del doc["end"][missing]
    with pytest.raises(TestbedError, match=f"end.{missing}"):
        parse_iperf3_json(json.dumps(doc))


def test_empty_end_without_error_raises() -> None:
    doc = json.loads(_load("iperf3_error_refused.json"))
    del doc["error"]
    with pytest.raises(TestbedError, match="^iperf3: output has no end"):
        parse_iperf3_json(json.dumps(doc))


def test_duration_falls_back_to_sum_sent() -> None:
    doc = json.loads(_load("iperf3_tcp_loopback.json"))
    del doc["end"]["sum_received"]["seconds"]
    assert parse_iperf3_json(json.dumps(doc)).duration_s == pytest.approx(1.000313)


# --- argv builders -------------------------------------------------------------------------


def test_client_argv_defaults() -> None:
    expected = ["iperf3", "-c", "10.244.1.2", "-p", "5201", "-t", "3", "-J"]
    assert client_argv("10.244.1.2") == expected


def test_client_argv_with_omit_and_streams() -> None:
    argv = client_argv("10.0.0.1", port=5399, duration_s=10.0, omit_s=2, streams=4)
    expected = ["iperf3", "-c", "10.0.0.1", "-p", "5399", "-t", "10", "-J", "-O", "2", "-P", "4"]
    assert argv == expected


@pytest.mark.parametrize("kwargs", [{"duration_s": 1.5}, {"omit_s": 0.5}, {"duration_s": 0}])
def test_client_argv_refuses_durations_iperf3_would_truncate(kwargs: dict[str, float]) -> None:
    # iperf3 3.12 parses -t/-O with atoi(): "-t 1.5" silently runs a 1 s test
    with pytest.raises(TestbedError, match="whole number of seconds"):
        client_argv("10.0.0.1", **kwargs)  # type: ignore[arg-type]


def test_client_argv_pins_client_and_server() -> None:
    argv = client_argv("10.0.0.1", pin=(0, 1))
    assert argv[-2:] == ["-A", "0,1"]
    with pytest.raises(TestbedError, match="numbered from 0"):
        client_argv("10.0.0.1", pin=(-1, 0))


def test_client_argv_refuses_zero_streams() -> None:
    with pytest.raises(TestbedError, match="streams"):
        client_argv("10.0.0.1", streams=0)


def test_server_argv() -> None:
    assert server_argv() == ["iperf3", "-s", "-p", "5201"]
    expected = ["iperf3", "-s", "-p", "5399", "-B", "10.244.1.2"]
    assert server_argv(5399, bind="10.244.1.2") == expected
    assert "-1" not in server_argv()


# --- numbers that cannot be rates: an error, never a number -------------------------------

@pytest.mark.parametrize(("path", "value", "fragment"), [
    (("end", "sum_received", "bits_per_second"), float("nan"), "not a rate"),
    (("end", "sum_received", "bits_per_second"), -1.0, "not a rate"),
    (("end", "sum_sent", "bits_per_second"), float("inf"), "not a rate"),
    (("end", "sum_received", "seconds"), 0, "lasted 0 s"),
    (("end", "sum_sent", "retransmits"), -3, "retransmits make no sense"),
], ids=["nan", "negative", "infinite", "no-time", "negative-retransmits"])
def test_impossible_numbers_are_an_error(path: tuple[str, ...], value: float,
                                         fragment: str) -> None:
    doc = json.loads(_load("iperf3_tcp_loopback.json"))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(TestbedError, match=fragment):
        parse_iperf3_json(json.dumps(doc))  # NaN and Infinity travel as JSON extensions
