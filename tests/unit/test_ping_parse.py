"""Unit tests for testbed.measure.ping: parse real and hand-made iputils-ping output."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import TestbedError
from testbed.measure.ping import PingResult, parse_ping, ping_argv, ping_metrics

DATA = Path(__file__).parent.parent / "data"


def _load(name: str) -> str:
    return (DATA / name).read_text()


# --- real output: `ping -n -c 5 -i 0.2 127.0.0.1` (iputils 20221126) --------------------------


def test_loopback_counts_and_loss() -> None:
    result = parse_ping(_load("ping_loopback.txt"))
    assert result.transmitted == 5
    assert result.received == 5
    assert result.loss_pct == 0.0
    assert result.duplicates == 0
    assert result.errors == 0


def test_loopback_rtt_values_come_from_the_summary_line() -> None:
    result = parse_ping(_load("ping_loopback.txt"))
    assert result.rtt_min_ms == pytest.approx(0.037)
    assert result.rtt_avg_ms == pytest.approx(0.047)
    assert result.rtt_max_ms == pytest.approx(0.071)
    assert result.rtt_mdev_ms == pytest.approx(0.012)


def test_loopback_ttl_is_64_for_every_reply() -> None:
    result = parse_ping(_load("ping_loopback.txt"))
    assert result.ttls == (64, 64, 64, 64, 64)
    assert result.ttl == 64


def test_loopback_metrics() -> None:
    metrics = parse_ping(_load("ping_loopback.txt")).metrics()
    assert metrics == pytest.approx(
        {
            "loss_pct": 0.0,
            "rtt_min_ms": 0.037,
            "rtt_avg_ms": 0.047,
            "rtt_max_ms": 0.071,
            "rtt_mdev_ms": 0.012,
            "ttl": 64,
        }
    )


def test_result_is_frozen() -> None:
    result = parse_ping(_load("ping_loopback.txt"))
    with pytest.raises(AttributeError):
        result.received = 0  # type: ignore[misc]


# --- hand-made files (*_handmade.txt): written by hand in the iputils 20221126 format, because
# --- loss, unreachable hosts and duplicates cannot be produced on loopback without root/netem.


def test_partial_loss_keeps_ping_percentage_and_ignores_pipe_suffix() -> None:
    result = parse_ping(_load("ping_partial_loss_handmade.txt"))
    assert (result.transmitted, result.received) == (3, 2)
    assert result.loss_pct == pytest.approx(33.3333)
    # ", pipe 2" follows the rtt line when the rtt exceeds the interval
    assert result.rtt_min_ms == pytest.approx(250.412)
    assert result.rtt_avg_ms == pytest.approx(250.749)
    assert result.rtt_max_ms == pytest.approx(251.087)
    assert result.rtt_mdev_ms == pytest.approx(0.337)
    # reply lines print "time=250 ms" without decimals above 100 ms; only the TTL is used
    assert result.ttls == (62, 62)
    assert result.ttl == 62


def test_total_loss_has_no_rtt_and_no_ttl() -> None:
    result = parse_ping(_load("ping_total_loss_handmade.txt"))
    assert (result.transmitted, result.received) == (5, 0)
    assert result.loss_pct == 100.0
    assert result.rtt_min_ms is None
    assert result.rtt_avg_ms is None
    assert result.rtt_max_ms is None
    assert result.rtt_mdev_ms is None
    assert result.ttls == ()
    assert result.ttl is None
    assert result.metrics() == {"loss_pct": 100.0}


def test_host_unreachable_lines_are_errors_not_replies() -> None:
    result = parse_ping(_load("ping_host_unreachable_handmade.txt"))
    assert (result.transmitted, result.received) == (5, 0)
    assert result.errors == 3
    assert result.loss_pct == 100.0
    assert result.ttls == ()
    # a bare "pipe 3" line (no rtt line before it) must not be taken for rtt values
    assert result.rtt_avg_ms is None
    assert result.metrics() == {"loss_pct": 100.0}


def test_duplicates_are_reply_lines_but_not_received_packets() -> None:
    result = parse_ping(_load("ping_dup_handmade.txt"))
    assert (result.transmitted, result.received) == (3, 3)
    assert result.duplicates == 2
    assert result.loss_pct == 0.0
    # documented choice: every reply line, "(DUP!)" ones included, contributes its TTL
    assert result.ttls == (63, 62, 63, 62, 63)
    assert result.ttl == 63
    assert result.rtt_avg_ms == pytest.approx(0.073)


def test_network_unreachable_raises_with_the_ping_message() -> None:
    with pytest.raises(TestbedError) as info:
        parse_ping(_load("ping_network_unreachable_handmade.txt"))
    message = str(info.value)
    assert "Network is unreachable" in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["", "\n\n", "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\n"])
def test_output_without_summary_raises(text: str) -> None:
    with pytest.raises(TestbedError, match="no statistics summary"):
        parse_ping(text)


def test_summary_without_loss_means_nothing_was_sent() -> None:
    with pytest.raises(TestbedError, match="no packets were transmitted"):
        parse_ping("--- 10.0.0.1 ping statistics ---\n0 packets transmitted, 0 received\n")


def test_ttl_tie_goes_to_the_earliest_reply() -> None:
    result = PingResult(2, 2, 0.0, 1.0, 1.0, 1.0, 0.0, ttls=(61, 64))
    assert result.ttl == 61


def test_reply_line_with_hostname_and_timestamp_is_recognised() -> None:
    text = (
        "[1795679176.123456] 64 bytes from localhost (127.0.0.1): icmp_seq=1 ttl=64 time=0.05 ms\n"
        "\n--- localhost ping statistics ---\n"
        "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
        "rtt min/avg/max/mdev = 0.050/0.050/0.050/0.000 ms\n"
    )
    assert parse_ping(text).ttls == (64,)


# --- argv builder ---------------------------------------------------------------------------


def test_ping_argv_defaults() -> None:
    expected = ["ping", "-n", "-c", "5", "-i", "0.2", "-W", "1", "10.244.1.2"]
    assert ping_argv("10.244.1.2") == expected


def test_ping_argv_with_deadline_keeps_destination_last() -> None:
    argv = ping_argv("10.0.0.1", count=20, interval_s=0.5, deadline_s=10, wait_s=0.25)
    assert argv == ["ping", "-n", "-c", "20", "-i", "0.5", "-W", "0.25", "-w", "10", "10.0.0.1"]
    assert all(isinstance(arg, str) for arg in argv)


def test_ping_argv_rejects_fractional_deadline() -> None:
    # iputils 20221126 answers "ping: invalid argument: '1.5'" for -w 1.5
    with pytest.raises(TestbedError, match="deadline"):
        ping_argv("10.0.0.1", deadline_s=1.5)


@pytest.mark.parametrize(
    "kwargs", [{"count": 0}, {"interval_s": 0}, {"wait_s": -1.0}, {"deadline_s": 0}]
)
def test_ping_argv_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(TestbedError):
        ping_argv("10.0.0.1", **kwargs)  # type: ignore[arg-type]


# --- output that contradicts itself: an error, never a number -----------------------------

GOOD = _load("ping_loopback.txt")
SUMMARY = "5 packets transmitted, 5 received, 0% packet loss, time 815ms"


@pytest.mark.parametrize(("old", "new", "fragment"), [
    (SUMMARY, "5 packets transmitted, 6 received, 0% packet loss, time 815ms", "6 received of 5"),
    (SUMMARY, "5 packets transmitted, 5 received, 40% packet loss, time 815ms", "contradicts"),
    (SUMMARY, "5 packets transmitted, 3 received, 0% packet loss, time 815ms", "contradicts"),
    (SUMMARY, "5 packets transmitted, 5 received, 140% packet loss, time 815ms",
     "contradicts"),
    (SUMMARY, "0 packets transmitted, 0 received, 0% packet loss, time 0ms", "makes no sense"),
    ("rtt min/avg/max/mdev", "rtt min/avg/MAX/mdev", "no rtt line"),
    ("ttl=64", "ttl=300", "outside 1..255"),
], ids=["more-received-than-sent", "loss-too-high", "loss-too-low", "loss-over-100",
        "nothing-sent", "rtt-line-missing", "ttl-out-of-range"])
def test_contradictory_output_is_an_error(old: str, new: str, fragment: str) -> None:
    assert old in GOOD
    with pytest.raises(TestbedError, match=fragment.replace("(", r"\(")):
        parse_ping(GOOD.replace(old, new))


def test_rtts_out_of_order_are_an_error() -> None:
    line = next(x for x in GOOD.splitlines() if x.startswith("rtt "))
    bad = GOOD.replace(line, "rtt min/avg/max/mdev = 0.5/0.1/0.2/0.01 ms")
    with pytest.raises(TestbedError, match="make no sense"):
        parse_ping(bad)


# --- loss or could-not-measure ----------------------------------------------------------

def test_a_sensible_summary_is_a_measurement_and_no_route_is_total_loss() -> None:
    assert ping_metrics(0, GOOD, "")["loss_pct"] == 0.0
    assert ping_metrics(1, _load("ping_total_loss_handmade.txt"), "") == {"loss_pct": 100.0}
    no_route = _load("ping_network_unreachable_handmade.txt")
    assert ping_metrics(2, "", no_route) == {"loss_pct": 100.0}


@pytest.mark.parametrize(("code", "out", "err", "fragment"), [
    (1, "", "nsenter: cannot open /var/run/netns/ktb-x: No such file", "exited 1: nsenter"),
    (124, "PING 10.0.0.3 (10.0.0.3) 56(84) bytes of data.\n", "\n(timed out)",
     "exited 124: (timed out)"),
    (2, "", "ping: invalid argument: '-1'", "exited 2: ping: invalid argument"),
    (0, "", "", "exited 0: no output"),
    (2, "", "ping: connect: Network is unreachable (said a wrapper)", "exited 2"),
], ids=["nsenter-failed", "timed-out", "usage-error", "no-output", "unreachable-lookalike"])
def test_a_ping_that_did_not_measure_is_an_error_not_loss(code: int, out: str, err: str,
                                                          fragment: str) -> None:
    with pytest.raises(TestbedError) as info:
        ping_metrics(code, out, err)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# `ping -D -O -n -i 0.02` across a fault: replies, a gap with "no answer yet" and an ICMP
# error, then replies again (real lines, times shortened)
STREAM = """\
PING 10.0.1.2 (10.0.1.2) 56(84) bytes of data.
[100.000100] 64 bytes from 10.0.1.2: icmp_seq=1 ttl=61 time=0.100 ms
[100.024100] 64 bytes from 10.0.1.2: icmp_seq=2 ttl=61 time=0.100 ms
[100.048000] From 10.100.0.1 icmp_seq=3 Destination Net Unreachable
[101.048000] no answer yet for icmp_seq=4
[101.072300] 64 bytes from 10.0.1.2: icmp_seq=6 ttl=61 time=0.300 ms
[101.096100] 64 bytes from 10.0.1.2: icmp_seq=7 ttl=61 time=0.100 ms

--- 10.0.1.2 ping statistics ---
7 packets transmitted, 4 received, +1 errors, 42.8571% packet loss, time 120ms
"""


def test_recovery_through_a_fault() -> None:
    from testbed.measure.ping import recovery, timestamped_replies

    assert [s for _, s, _ in timestamped_replies(STREAM)] == [1, 2, 6, 7]
    r = recovery(STREAM, t_fault=100.030, t_restore=101.060)
    assert r.sent == 7 and r.lost == 3  # 3, 4, 5
    assert abs(r.recovery_s - 0.0123) < 1e-6  # first reply after the restore
    assert abs(r.outage_s - (101.0723 - 100.0241)) < 1e-6
    # never recovered: nothing to time
    cut = STREAM.split("[101.072300]")[0]
    assert recovery(cut, 100.030, 101.060).recovery_s is None
    # a reply to a probe sent before the fault does not count as after it
    late = recovery(STREAM, t_fault=101.0721, t_restore=101.0722)
    assert late.recovery_s is not None and abs(late.recovery_s - (101.0961 - 101.0722)) < 1e-6
