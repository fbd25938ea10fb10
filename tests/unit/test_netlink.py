"""The packed rtnetlink requests, decoded by pyroute2's own parsers (the library checks the
encoding), and the socket's error reporting against the real kernel (harmless requests)."""

from __future__ import annotations

import errno
import struct
from ipaddress import IPv4Address, IPv4Network

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from testbed.kernel import netlink as nl


def decode(cls, data: bytes):
    msg = cls(data)
    msg.decode()
    assert msg["header"]["length"] == len(data)
    return msg


def test_veth_pair_request() -> None:
    msg = decode(ifinfmsg, nl.veth_pair("veth0a1b2c3d", "eth0", 42, mtu=1460, txqlen=0, master=7))
    assert msg["header"]["type"] == nl.RTM_NEWLINK
    assert msg["header"]["flags"] == (nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE
                                      | nl.NLM_F_EXCL)
    assert msg["flags"] & nl.IFF_UP and msg["change"] & nl.IFF_UP
    assert msg.get_attr("IFLA_IFNAME") == "veth0a1b2c3d"
    assert msg.get_attr("IFLA_MTU") == 1460
    assert msg.get_attr("IFLA_TXQLEN") == 0
    assert msg.get_attr("IFLA_MASTER") == 7
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer.get_attr("IFLA_IFNAME") == "eth0"
    assert peer.get_attr("IFLA_MTU") == 1460
    assert peer.get_attr("IFLA_TXQLEN") == 0
    assert peer.get_attr("IFLA_NET_NS_FD") == 42
    assert peer["flags"] == 0  # the pod's end comes up in the pod, after its address


@pytest.mark.parametrize("index,name", [(1, None), (0, "eth0")])
def test_link_up(index: int, name: str | None) -> None:
    msg = decode(ifinfmsg, nl.link_up(index, name))
    assert msg["index"] == index and msg.get_attr("IFLA_IFNAME") == name
    assert msg["flags"] == msg["change"] == nl.IFF_UP
    assert not msg["header"]["flags"] & nl.NLM_F_CREATE  # changes a link, never makes one


def test_link_del_and_get() -> None:
    assert decode(ifinfmsg, nl.link_del("eth0")).get_attr("IFLA_IFNAME") == "eth0"
    get = decode(ifinfmsg, nl.link_get("cbr0"))
    assert get["header"]["type"] == nl.RTM_GETLINK and get.get_attr("IFLA_IFNAME") == "cbr0"


def test_addr_add_request() -> None:
    msg = decode(ifaddrmsg, nl.addr_add(2, IPv4Address("10.0.1.5"), IPv4Network("10.0.1.0/24")))
    assert (msg["family"], msg["prefixlen"], msg["index"]) == (2, 24, 2)
    assert msg.get_attr("IFA_LOCAL") == msg.get_attr("IFA_ADDRESS") == "10.0.1.5"
    assert msg.get_attr("IFA_BROADCAST") == "10.0.1.255"


@pytest.mark.parametrize("dst,attr_dst", [("0.0.0.0/0", None), ("10.200.0.0/16", "10.200.0.0")])
def test_route_add_request(dst: str, attr_dst: str | None) -> None:
    msg = decode(rtmsg, nl.route_add(IPv4Network(dst), IPv4Address("10.0.0.1"), 2, 3))
    assert msg["dst_len"] == IPv4Network(dst).prefixlen
    assert msg.get_attr("RTA_DST") == attr_dst
    assert msg.get_attr("RTA_GATEWAY") == "10.0.0.1" and msg.get_attr("RTA_OIF") == 2
    assert (msg["table"], msg["proto"], msg["scope"], msg["type"]) == (254, 3, 0, 1)


def test_scope_routes_with_a_source_and_route_del() -> None:
    host = decode(rtmsg, nl.route_add(IPv4Network("10.0.0.5/32"), None, 7,
                                      scope=nl.RT_SCOPE_HOST))
    assert host["scope"] == 254 and host.get_attr("RTA_GATEWAY") is None
    assert host.get_attr("RTA_DST") == "10.0.0.5" and host.get_attr("RTA_OIF") == 7
    link = decode(rtmsg, nl.route_add(IPv4Network("10.0.0.1/32"), None, 2,
                                      scope=nl.RT_SCOPE_LINK,
                                      prefsrc=IPv4Address("10.0.0.5")))
    assert link["scope"] == 253 and link.get_attr("RTA_PREFSRC") == "10.0.0.5"
    gone = decode(rtmsg, nl.route_del(IPv4Network("10.0.0.0/24"), 2))
    assert gone["header"]["type"] == nl.RTM_DELROUTE
    assert not gone["header"]["flags"] & nl.NLM_F_CREATE
    assert (gone["dst_len"], gone["scope"], gone["proto"]) == (24, 255, 0)
    assert gone.get_attr("RTA_DST") == "10.0.0.0" and gone.get_attr("RTA_OIF") == 2


def test_parse_error_reads_the_kernels_message() -> None:
    header = struct.pack("=IHHII", 40, nl.RTM_NEWLINK, 5, 9, 0)
    text = b"Unknown device type\0"
    tlv = struct.pack("=HH", 4 + len(text), nl.NLMSGERR_ATTR_MSG) + text
    payload = struct.pack("=i", -errno.EOPNOTSUPP) + header + tlv + b"\0" * (-len(tlv) % 4)
    code, msg = nl.parse_error(payload, nl.NLM_F_CAPPED | nl.NLM_F_ACK_TLVS)
    assert (code, msg) == (errno.EOPNOTSUPP, "Unknown device type")
    assert nl.parse_error(struct.pack("=i", 0) + header, 0) == (0, "")


def test_socket_looks_links_up() -> None:
    with nl.RtnlSocket() as sock:
        assert sock.link_index("lo") == 1
        with pytest.raises(nl.NetlinkError) as exc:
            sock.link_index("ktb-nosuchlink")
        assert exc.value.errno == errno.ENODEV


def test_request_names_the_first_refused_message_across_batches() -> None:
    """Refused by the kernel either way (no such link as root, no permission otherwise);
    more messages than one buffer holds, so the acks of every batch are collected."""
    count = nl.BATCH * 2 + 3
    messages = [nl.link_up(0, f"ktb-nosuch{i}") for i in range(count)]
    with nl.RtnlSocket() as sock:
        with pytest.raises(nl.NetlinkError) as exc:
            sock.request(messages, [f"step {i}" for i in range(count)])
        assert "step 0:" in exc.value.strerror
        assert exc.value.errno in (errno.ENODEV, errno.EPERM)
        assert sock.link_index("lo") == 1  # every ack was read: the socket is still in step


def test_link_up_with_ipv4_device_settings() -> None:
    data = nl.link_up_inet_conf(2, {nl.IPV4_DEVCONF_ARP_NOTIFY: 1})
    msg = decode(ifinfmsg, data)
    assert msg["index"] == 2 and msg["flags"] == msg["change"] == nl.IFF_UP
    # IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { [IPV4_DEVCONF_ARP_NOTIFY] = 1 } } }, each
    # (length, type); pyroute2 cannot decode a partial IPv4 conf, so the bytes are spelt out
    assert data[32:] == struct.pack("=HHHHHHHHI", 20, nl.IFLA_AF_SPEC, 16, 2, 12,
                                    nl.IFLA_INET_CONF, 8, 22, 1)


def test_veth_pair_asks_for_an_echo_and_the_echo_names_the_peer() -> None:
    msg = decode(ifinfmsg, nl.veth_pair("veth1", "eth0", 3, echo=True))
    assert msg["header"]["flags"] & nl.NLM_F_ECHO
    assert not decode(ifinfmsg, nl.veth_pair("veth1", "eth0", 3))["header"]["flags"] \
        & nl.NLM_F_ECHO
    # what the kernel echoes: the new link, its peer's index as IFLA_LINK
    reply = ifinfmsg()
    reply["index"] = 7
    reply["attrs"] = [("IFLA_IFNAME", "veth1"), ("IFLA_MTU", 1500), ("IFLA_LINK", 2)]
    reply.encode()
    assert nl.parse_link(bytes(reply.data[16:])) == (7, 2)
    bare = ifinfmsg()
    bare["index"] = 9
    bare["attrs"] = [("IFLA_IFNAME", "lo")]
    bare.encode()
    assert nl.parse_link(bytes(bare.data[16:])) == (9, None)


class AcksOnly:
    """A netlink socket's stand-in for a kernel that ignores NLM_F_ECHO on link creation
    (before Linux 6.3): an ack for every request, nothing echoed."""

    def __init__(self) -> None:
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent = data

    def recv(self, _size: int) -> bytes:
        out, offset = b"", 0
        while offset < len(self.sent):
            length, _kind, _flags, seq, _pid = struct.unpack_from("=IHHII", self.sent, offset)
            body = struct.pack("=i", 0) + self.sent[offset:offset + 16]
            out += struct.pack("=IHHII", 16 + len(body), nl.NLMSG_ERROR, 0, seq, 0) + body
            offset += length
        return out

    def close(self) -> None:
        pass


def test_create_links_without_an_echo_says_so() -> None:
    with nl.RtnlSocket() as sock:
        sock.sock.close()
        sock.sock = AcksOnly()
        messages = [nl.veth_pair(f"veth{i}", "eth0", 3, echo=True) for i in range(3)]
        assert sock.create_links(messages) == [None, None, None]
