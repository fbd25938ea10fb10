"""Pins the readers the Services and outside verdicts rest on (testbed/measure/services.py)
and the traceroute parser tightly enough that mutation testing (`make mutate`) finds no
change that keeps them passing: every field of what they return, the lines they must skip,
and the malformed input they must refuse."""

from __future__ import annotations

import pytest

from testbed.errors import TestbedError
from testbed.measure.services import (
    Connection,
    Flow,
    addresses_seen,
    parse_access_log,
    parse_client,
    parse_conntrack,
)
from testbed.measure.traceroute import parse_traceroute

# -- the client probe's lines ----------------------------------------------------------------


def test_parse_client_every_field_and_the_defaults() -> None:
    resolved, conns = parse_client(
        '{"seq": 3, "t": 1.5, "ok": 1, "ms": 2, "error": "", "status": 200}\n'
        "not json\n"
        "\n"
        '{"resolved": "10.3.0.10", "name": "svc"}\n'
        '{"other": 1}\n'
        '{"seq": "4", "t": "1.75", "ok": false, "ms": "1.5"}\n')
    assert resolved == "10.3.0.10"
    assert conns == [Connection(3, 1.5, True, 2.0, "", 200),
                     Connection(4, 1.75, False, 1.5, "", 0)]
    c = conns[0]
    assert (type(c.seq), type(c.t), type(c.ok), type(c.ms), type(c.status)) == (
        int, float, bool, float, int)


def test_parse_client_with_an_error_and_no_resolution() -> None:
    resolved, conns = parse_client(
        '{"seq": 0, "t": 1.0, "ok": false, "ms": 3.0, "error": "ConnectionRefusedError"}\n')
    assert resolved is None
    assert conns == [Connection(0, 1.0, False, 3.0, "ConnectionRefusedError", 0)]
    assert parse_client("") == (None, [])


def test_parse_client_the_last_resolution_wins() -> None:
    resolved, _ = parse_client('{"resolved": "10.3.0.1"}\n{"resolved": "10.3.0.2"}\n')
    assert resolved == "10.3.0.2"


# -- the servers' access logs ----------------------------------------------------------------

def test_parse_access_log_keeps_the_requests_of_one_probe() -> None:
    log = ('10.0.0.3 - - [27/Nov/2026 05:20:58] "GET /?probe=split-7 HTTP/1.0" 200 -\n'
           '10.0.0.4 - - [27/Nov/2026 05:20:58] "GET /cart?probe=split-12 HTTP/1.1" 200 -\n'
           '10.0.0.5 - - [27/Nov/2026 05:20:58] "GET /?probe=split.x-8 HTTP/1.0" 200 -\n'
           '10.0.0.1 - - [27/Nov/2026 05:20:58] "GET /?probe=other-8 HTTP/1.0" 200 -\n'
           '10.0.0.6 - - [27/Nov/2026 05:20:59] "GET / HTTP/1.1" 200 -\n'
           ' 10.0.0.7 - - [27/Nov/2026 05:20:59] "GET /?probe=split-9 HTTP/1.0" 200 -\n'
           '10.0.0.8 - - [27/Nov/2026 05:20:59] "POST /?probe=split-10 HTTP/1.0" 200 -\n')
    assert parse_access_log(log, "split") == {7: "10.0.0.3", 12: "10.0.0.4"}
    assert parse_access_log(log, "split.x") == {8: "10.0.0.5"}
    assert parse_access_log(log, "SPLIT") == {}


# -- conntrack -------------------------------------------------------------------------------

def test_parse_conntrack_both_directions_of_each_entry() -> None:
    flows = parse_conntrack(
        "tcp      6 117 TIME_WAIT src=10.0.0.3 dst=10.3.241.152 sport=40000 dport=80 "
        "src=10.0.1.2 dst=10.0.0.3 sport=8080 dport=40000 [ASSURED] mark=0 use=1\n"
        "\n"
        "icmp     1 29 src=10.0.0.3 dst=10.0.1.2 type=8 code=0 id=7 src=10.0.1.2 "
        "dst=10.0.0.3 type=0 code=0 id=7 mark=0 use=1\n"
        "udp      17 20 src=10.0.0.3 dst=10.3.0.10 sport=5000 dport=53 [UNREPLIED]\n"
        "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n")
    assert flows == [
        Flow("tcp", "10.0.0.3", "10.3.241.152", 80, "10.0.1.2", "10.0.0.3", 8080),
        Flow("icmp", "10.0.0.3", "10.0.1.2", 0, "10.0.1.2", "10.0.0.3", 0)]


def test_parse_conntrack_a_value_may_hold_an_equals_sign_and_a_bare_word_is_no_field(
) -> None:
    (flow,) = parse_conntrack("tcp 6 1 src dport src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 "
                              "src=2.2.2.2 dst=a=b sport=2 dport=1\n")
    assert flow == Flow("tcp", "1.1.1.1", "2.2.2.2", 2, "2.2.2.2", "a=b", 2)


def test_parse_conntrack_ignores_words_that_only_look_like_fields() -> None:
    (flow,) = parse_conntrack("tcp 6 1 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 "
                              "zone=3 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 xsrc=9.9.9.9\n")
    assert flow == Flow("tcp", "1.1.1.1", "2.2.2.2", 2, "2.2.2.2", "1.1.1.1", 2)


# -- tcpdump's text --------------------------------------------------------------------------

def test_addresses_seen_counts_each_packet_once_per_address() -> None:
    text = ("05:29:38.833170 IP 10.0.0.3.35382 > 10.0.1.2.8080: Flags [S], length 0\n"
            "05:29:38.833186 ARP, Request who-has 10.100.0.3 tell 10.100.0.1, length 28\n"
            "05:29:38.833228 IP 10.0.1.2.8080 > 10.0.0.3.35382: Flags [S.], length 0\n"
            "05:29:38.9 IP 10.0.0.3 > 10.0.0.3: ICMP echo request\n"
            "05:29:39.0 IP6 fe80::1 > ff02::1: ICMP6, 1.2.3 seq 4.5.6.x\n"
            "05:29:39.1 IP 10.0.0.3.1>10.0.1.2.2:tcp\n"
            "05:29:39.2 IP 10.0.0.7.domain > 10.0.0.9:53 (named port, colon port)\n")
    assert addresses_seen(text) == {"10.0.0.3": 4, "10.0.1.2": 3, "10.100.0.3": 1,
                                    "10.100.0.1": 1, "10.0.0.7": 1, "10.0.0.9": 1}
    assert addresses_seen("") == {}


# -- traceroute ------------------------------------------------------------------------------

def test_traceroute_each_hop_in_order() -> None:
    text = ("traceroute to 10.0.1.2 (10.0.1.2), 8 hops max, 60 byte packets\n"
            " 1  10.0.0.1  0.050 ms\n"
            " 2  *\n"
            " 3  10.100.0.3  0.090 ms\n"
            " 4  10.0.1.2  0.120 ms\n")
    assert parse_traceroute(text) == ["10.0.0.1", None, "10.100.0.3", "10.0.1.2"]


def test_traceroute_the_first_address_of_a_hop_that_answered() -> None:
    text = " 1  * 10.0.0.1  0.050 ms 10.0.0.9  0.060 ms\n 2  * * *\n"
    assert parse_traceroute(text) == ["10.0.0.1", None]


@pytest.mark.parametrize("text, message", [
    ("", "traceroute: no hop lines in output (empty output)"),
    ("connect: Network is unreachable\n",
     "traceroute: no hop lines in output: connect: Network is unreachable"),
    (" 1  10.0.0.1  0.05 ms\n 3  10.0.1.2  0.1 ms\n",
     "traceroute: hop 3 where hop 2 was expected: 3  10.0.1.2  0.1 ms"),
    (" 2  10.0.0.1  0.05 ms\n", "traceroute: hop 2 where hop 1 was expected: 2  10.0.0.1"),
    (" 1  * garbage\n", "traceroute: cannot read hop line: 1  * garbage"),
])
def test_traceroute_refuses_what_is_not_a_path(text: str, message: str) -> None:
    with pytest.raises(TestbedError) as err:
        parse_traceroute(text)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("text, prefix", [
    (" 1  10.0.0.1  0.05 ms\n 3  " + "x" * 300 + "\n",
     "traceroute: hop 3 where hop 2 was expected: "),
    (" 1  * " + "x" * 300 + "\n", "traceroute: cannot read hop line: "),
], ids=["out-of-order", "unreadable"])
def test_traceroute_quotes_at_most_200_characters_of_a_bad_line(text: str, prefix: str
                                                                ) -> None:
    with pytest.raises(TestbedError) as err:
        parse_traceroute(text)
    message = str(err.value)
    assert message.startswith(prefix) and len(message) == len(prefix) + 200


# -- a ping stream through a fault -----------------------------------------------------------

def reply(t: str, seq: int, ms: str) -> str:
    return f"[{t}] 64 bytes from 10.0.1.2: icmp_seq={seq} ttl=61 time={ms} ms"


# probe 1 never answered; 3 was sent just before 100.0, 4 exactly at 100.0 (replied at
# 100.5 after 500 ms); 5 met an ICMP error; 6 was sent exactly at 101.0 and answered at
# 101.5; 7 answered at once; 8, the last, never answered
FAULT_STREAM = "\n".join([
    "PING 10.0.1.2 (10.0.1.2) 56(84) bytes of data.",
    "[99.000] no answer yet for icmp_seq=1",
    reply("99.500", 2, "100"),
    reply("100.4999", 3, "500"),
    reply("100.5", 4, "500"),
    "[100.6] From 10.100.0.1 icmp_seq=5 Destination Net Unreachable",
    reply("101.5", 6, "500"),
    reply("102.0", 7, "1"),
    "[102.5] no answer yet for icmp_seq=8",
]) + "\n"


def test_recovery_counts_every_unanswered_probe_first_and_last_included() -> None:
    from testbed.measure.ping import recovery

    r = recovery(FAULT_STREAM, t_fault=100.0, t_restore=101.5)
    assert (r.sent, r.lost) == (8, 3)  # 1, 5 and 8
    assert r.recovery_s == pytest.approx(0.0, abs=1e-9)  # a reply at the restore counts
    # before the fault: probes sent before 100.0 (2 and 3); 4, sent at 100.0, is not
    assert r.outage_s == pytest.approx(101.5 - 100.4999, abs=1e-9)


def test_recovery_a_probe_sent_at_the_fault_is_after_it() -> None:
    from testbed.measure.ping import recovery

    r = recovery(FAULT_STREAM, t_fault=101.0, t_restore=101.5)
    assert r.recovery_s == pytest.approx(0.0, abs=1e-9)  # probe 6, sent at 101.0
    assert r.outage_s == pytest.approx(101.5 - 100.5, abs=1e-9)
    # probe 3 was sent 0.1 ms before the fault, so its reply (after the restore) is not
    # the first one after the fault: probe 4's is
    r = recovery(FAULT_STREAM, t_fault=100.0, t_restore=100.4)
    assert r.recovery_s == pytest.approx(100.5 - 100.4, abs=1e-9)


def test_recovery_of_nothing() -> None:
    from testbed.measure.ping import Recovery, recovery

    assert recovery("", 1.0, 2.0) == Recovery(sent=0, lost=0, outage_s=None, recovery_s=None)
