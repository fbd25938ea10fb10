"""Unit tests for testbed.measure.traceroute: argv and parsing of real and hand-made output."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import TestbedError
from testbed.measure.traceroute import parse_traceroute, traceroute_argv

DATA = Path(__file__).parent.parent / "data"


def _load(name: str) -> str:
    return (DATA / name).read_text()


def test_argv_defaults() -> None:
    assert traceroute_argv("10.0.1.2") == [
        "traceroute", "-n", "-q", "1", "-w", "1", "-m", "8", "10.0.1.2",
    ]


def test_argv_custom_hops_and_wait() -> None:
    assert traceroute_argv("127.0.0.1", max_hops=3, wait_s=2) == [
        "traceroute", "-n", "-q", "1", "-w", "2", "-m", "3", "127.0.0.1",
    ]


# --- real output: `traceroute -n -q 1 -w 1 -m 3 127.0.0.1` (Debian traceroute 2.1.2) ---------


def test_loopback_is_one_hop() -> None:
    assert parse_traceroute(_load("traceroute_loopback.txt")) == ["127.0.0.1"]


# --- hand-made files, in the exact format of the real capture above ---------------------------


def test_cross_node_path_handmade() -> None:
    # Hand-made: pod on node-1 -> cbr0 gateway -> router -> node-2 -> pod on node-2.
    hops = parse_traceroute(_load("traceroute_pod_cross_node_handmade.txt"))
    assert hops == ["10.0.0.1", "10.100.0.1", "10.100.0.3", "10.0.1.2"]


def test_star_hop_is_none_handmade() -> None:
    # Hand-made: the router at hop 2 does not answer.
    hops = parse_traceroute(_load("traceroute_star_hop_handmade.txt"))
    assert hops == ["10.0.0.1", None, "10.100.0.3", "10.0.1.2"]


def test_trailing_stars_and_error_annotation_inline() -> None:
    # Hand-made: "!H" after the time, then an unreachable tail of timeouts.
    text = (
        "traceroute to 10.0.9.9 (10.0.9.9), 4 hops max, 60 byte packets\n"
        " 1  10.0.0.1  0.061 ms\n"
        " 2  10.100.0.1  3004.512 ms !H\n"
        " 3  *\n"
        " 4  *\n"
    )
    assert parse_traceroute(text) == ["10.0.0.1", "10.100.0.1", None, None]


def test_two_digit_hop_numbers_inline() -> None:
    # Hand-made: hop numbers are "%2u", so hop 10 has no leading space.
    lines = ["traceroute to 10.0.0.10 (10.0.0.10), 10 hops max, 60 byte packets"]
    lines += [f"{i:2d}  10.0.0.{i}  0.0{i} ms" for i in range(1, 11)]
    hops = parse_traceroute("\n".join(lines) + "\n")
    assert hops == [f"10.0.0.{i}" for i in range(1, 11)]


def test_ipv6_hop_inline() -> None:
    text = "traceroute to ::1 (::1), 3 hops max, 80 byte packets\n 1  ::1  0.040 ms\n"
    assert parse_traceroute(text) == ["::1"]


# --- failures: one-line TestbedError, never an empty path -------------------------------------


def test_unknown_host_raises_one_line() -> None:
    # Real stderr of `traceroute -n -q 1 nosuchhost.invalid` on this machine.
    text = (
        "nosuchhost.invalid: Name or service not known\n"
        "Cannot handle \"host\" cmdline arg `nosuchhost.invalid' on position 1 (argc 4)\n"
    )
    with pytest.raises(TestbedError) as info:
        parse_traceroute(text)
    message = str(info.value)
    assert "\n" not in message
    assert message == "traceroute: no hop lines in output: " \
        "nosuchhost.invalid: Name or service not known"


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_empty_output_raises(text: str) -> None:
    with pytest.raises(TestbedError) as info:
        parse_traceroute(text)
    assert str(info.value) == "traceroute: no hop lines in output (empty output)"


def test_header_only_raises() -> None:
    header = "traceroute to 10.0.1.2 (10.0.1.2), 8 hops max, 60 byte packets\n"
    with pytest.raises(TestbedError, match="no hop lines.*traceroute to 10.0.1.2"):
        parse_traceroute(header + "send: Network is unreachable\n")


def test_gap_in_hop_numbers_raises() -> None:
    text = " 1  10.0.0.1  0.061 ms\n 3  10.0.1.2  0.143 ms\n"
    with pytest.raises(TestbedError, match="hop 3 where hop 2 was expected"):
        parse_traceroute(text)


def test_unreadable_hop_line_raises() -> None:
    with pytest.raises(TestbedError, match="cannot read hop line: 1  somehost  0.061 ms"):
        parse_traceroute(" 1  somehost  0.061 ms\n")
