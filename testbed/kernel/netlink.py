"""The few rtnetlink requests the testbed sends, encoded with `struct`, sent in batches.

Why not pyroute2, the library for this: pyroute2 0.9 runs every request through an
asyncio event loop and a generic attribute encoder, ~1.4 ms a message on these machines
(profiled), while the kernel takes a few microseconds. A pod needs six messages, so a
profiled bring-up of a thousand pods spent 8.6 of its 21.7 s in pyroute2. The messages
below are fixed shapes with a handful of varying fields; they are packed directly and
sent several to a `sendmsg` (the kernel handles a buffer of requests one after another
and acknowledges each).
`tests/unit/test_netlink.py` decodes the messages with pyroute2's parsers, so the library
still checks the encoding.

Only what the pods, nodes and underlay need: veth pairs whose peer goes straight into
another namespace, bridges, setting links up, enslaving them, grouping them, IPv4
device settings, addresses, routes, deleting a link or a link group, looking one up.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h, linux/if_addr.h
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x4, 0x8
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # flags of an error/ack message
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK, NETLINK_EXT_ACK, NETLINK_CAP_ACK = 270, 11, 10
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE, RTM_DELROUTE = 20, 24, 25
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_TXQLEN = 1, 3, 4, 5, 10, 13
IFLA_LINKINFO, IFLA_AF_SPEC, IFLA_NET_NS_FD, IFLA_GROUP = 18, 26, 28, 27
IFLA_INET_CONF = 1
IPV4_DEVCONF_ARP_NOTIFY = 22  # linux/ip.h: the index of arp_notify in a device's IPv4 conf
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC = 1, 4, 5, 7
RT_TABLE_MAIN, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 0, 1
RT_SCOPE_LINK, RT_SCOPE_HOST, RT_SCOPE_NOWHERE = 253, 254, 255
RTPROT_BOOT = 3  # what `ip route add` and the CNI plugins give a route
IFF_UP = 0x1
LO_INDEX = 1  # the loopback device is always the first in a network namespace
NLA_F_NESTED = 0x8000
# Requests per buffer: the kernel queues every ack before we read any, and a few hundred
# would overflow the socket's receive buffer (acks lost, ENOBUFS).
BATCH = 64

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
# rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTMSG = struct.Struct("=BBBBBBBBI")
_ATTR = struct.Struct("=HH")


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to four bytes."""
    return _pad(_ATTR.pack(_ATTR.size + len(payload), kind) + payload)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def nested(kind: int, *attrs: bytes, flag: bool = True) -> bytes:
    """A nested attribute; `flag` marks it NLA_F_NESTED (iproute2 does not inside
    IFLA_AF_SPEC, and the kernel accepts both there)."""
    return attr(kind | (NLA_F_NESTED if flag else 0), b"".join(attrs))


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def message(kind: int, flags: int, body: bytes, seq: int = 0) -> bytes:
    """A netlink message; the sequence number is filled in when it is sent."""
    return _HDR.pack(_HDR.size + len(body), kind, flags, seq, 0) + body


_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
_CHANGE = NLM_F_REQUEST | NLM_F_ACK


def _link_attrs(mtu: int | None, txqlen: int | None, master: int | None,
                group: int | None) -> bytes:
    out = b""
    if mtu is not None:
        out += attr_u32(IFLA_MTU, mtu)
    if txqlen is not None:
        out += attr_u32(IFLA_TXQLEN, txqlen)
    if master is not None:
        out += attr_u32(IFLA_MASTER, master)
    if group is not None:
        out += attr_u32(IFLA_GROUP, group)
    return out


def _mac(value: str | None) -> bytes:
    return attr(IFLA_ADDRESS, bytes.fromhex(value.replace(":", ""))) if value else b""


def veth_pair(name: str, peer: str, peer_netns_fd: int, *, mtu: int | None = None,
              txqlen: int | None = None, master: int | None = None, up: bool = True,
              group: int | None = None, mac: str | None = None,
              peer_mac: str | None = None, echo: bool = False) -> bytes:
    """RTM_NEWLINK: a veth pair, this end optionally up, enslaved and in a link group, the
    peer created directly in the namespace of `peer_netns_fd` (down, as the kernel makes
    it; same MTU and queue length). Unset attributes keep the kernel's defaults (a random
    MAC address, for one). With `echo`, the kernel sends the new link back (this end's
    index, and the peer's as its IFLA_LINK): see RtnlSocket.create_links."""
    peer_body = (ifinfo() + attr_str(IFLA_IFNAME, peer) + _mac(peer_mac)
                 + _link_attrs(mtu, txqlen, None, None)
                 + attr_u32(IFLA_NET_NS_FD, peer_netns_fd))
    linkinfo = nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "veth"),
                      nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_body)))
    flags = IFF_UP if up else 0
    body = (ifinfo(flags=flags, change=flags) + attr_str(IFLA_IFNAME, name) + _mac(mac)
            + _link_attrs(mtu, txqlen, master, group) + linkinfo)
    return message(RTM_NEWLINK, _CREATE | (NLM_F_ECHO if echo else 0), body)


def bridge(name: str, *, mtu: int | None = None, up: bool = True,
           group: int | None = None) -> bytes:
    """RTM_NEWLINK: a Linux bridge with the kernel's defaults (spanning tree off), as
    `ip link add NAME type bridge` or `brctl addbr` make it."""
    flags = IFF_UP if up else 0
    body = (ifinfo(flags=flags, change=flags) + attr_str(IFLA_IFNAME, name)
            + _link_attrs(mtu, None, None, group)
            + nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge")))
    return message(RTM_NEWLINK, _CREATE, body)


def link_set(name: str, *, master: int | None = None, up: bool | None = None,
             group: int | None = None) -> bytes:
    """RTM_NEWLINK on an existing link, by name: enslave it, set it up or down, put it in
    a link group (whichever are given)."""
    change = 0 if up is None else IFF_UP
    flags = IFF_UP if up else 0
    body = (ifinfo(0, flags, change) + attr_str(IFLA_IFNAME, name)
            + _link_attrs(None, None, master, group))
    return message(RTM_NEWLINK, _CHANGE, body)


def link_up(index: int = 0, name: str | None = None) -> bytes:
    """RTM_NEWLINK on an existing link (by index, or by name when index is 0): set it up."""
    body = ifinfo(index, IFF_UP, IFF_UP) + (attr_str(IFLA_IFNAME, name) if name else b"")
    return message(RTM_NEWLINK, _CHANGE, body)


def group_del(group: int) -> bytes:
    """RTM_DELLINK of every link in a link group: one request, and the kernel unregisters
    them together (one wait for readers instead of one per link, ~20 ms each here)."""
    if group <= 0:
        raise ValueError("link group 0 is every link's default group")
    return message(RTM_DELLINK, _CHANGE, ifinfo() + attr_u32(IFLA_GROUP, group))


def link_up_inet_conf(index: int, conf: dict[int, int]) -> bytes:
    """RTM_NEWLINK on an existing link: set it up and set IPv4 per-device settings (the
    values of /proc/sys/net/ipv4/conf/<dev>/, by IPV4_DEVCONF_* index) in one request.

    Why not write /proc/sys: every pod's interface is eth0, and the kernel finds a
    /proc/sys entry among those of every namespace with that name, so each write costs
    more as pods are added (~0.7 ms each at 5000 pods)."""
    inet = nested(IFLA_INET_CONF, *(attr_u32(k, v) for k, v in sorted(conf.items())),
                  flag=False)
    body = ifinfo(index, IFF_UP, IFF_UP) + nested(
        IFLA_AF_SPEC, nested(socket.AF_INET, inet, flag=False), flag=False)
    return message(RTM_NEWLINK, _CHANGE, body)


def link_del(name: str) -> bytes:
    return message(RTM_DELLINK, _CHANGE, ifinfo() + attr_str(IFLA_IFNAME, name))


def link_get(name: str) -> bytes:
    return message(RTM_GETLINK, NLM_F_REQUEST, ifinfo() + attr_str(IFLA_IFNAME, name))


def addr_add(index: int, address: IPv4Address, network: IPv4Network,
             broadcast: bool = True) -> bytes:
    """RTM_NEWADDR as `ip addr add A/P [broadcast B] dev I` sends it (local = address)."""
    body = (_IFADDR.pack(socket.AF_INET, network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, address.packed) + attr(IFA_ADDRESS, address.packed))
    if broadcast:
        body += attr(IFA_BROADCAST, network.broadcast_address.packed)
    return message(RTM_NEWADDR, _CREATE, body)


def route_add(dst: IPv4Network, gateway: IPv4Address | None, oif: int,
              proto: int = RTPROT_BOOT, scope: int = RT_SCOPE_UNIVERSE,
              prefsrc: IPv4Address | None = None) -> bytes:
    """RTM_NEWROUTE: a unicast route in the main table, out of `oif`, via a gateway (or
    none: `scope link`/`scope host` routes), optionally with a preferred source."""
    body = _RTMSG.pack(socket.AF_INET, dst.prefixlen, 0, 0, RT_TABLE_MAIN, proto,
                       scope, RTN_UNICAST, 0)
    if dst.prefixlen:
        body += attr(RTA_DST, dst.network_address.packed)
    if prefsrc is not None:
        body += attr(RTA_PREFSRC, prefsrc.packed)
    if gateway is not None:
        body += attr(RTA_GATEWAY, gateway.packed)
    body += attr_u32(RTA_OIF, oif)
    return message(RTM_NEWROUTE, _CREATE, body)


def route_del(dst: IPv4Network, oif: int) -> bytes:
    """RTM_DELROUTE of the main table's route to `dst` out of `oif`, whatever its protocol
    and scope (as netlink.RouteDel with SCOPE_NOWHERE: the kernel's connected route)."""
    body = _RTMSG.pack(socket.AF_INET, dst.prefixlen, 0, 0, RT_TABLE_MAIN, 0,
                       RT_SCOPE_NOWHERE, RTN_UNICAST, 0)
    body += attr(RTA_DST, dst.network_address.packed) + attr_u32(RTA_OIF, oif)
    return message(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, body)


def parse_link(payload: bytes) -> tuple[int, int | None]:
    """(index, IFLA_LINK or None) of an RTM_NEWLINK message: a veth's IFLA_LINK is its
    peer's index, in the peer's namespace."""
    index = _IFINFO.unpack_from(payload)[2]
    offset = _IFINFO.size
    while offset + _ATTR.size <= len(payload):
        length, kind = _ATTR.unpack_from(payload, offset)
        if length < _ATTR.size:
            break
        if kind & ~NLA_F_NESTED == IFLA_LINK and length >= _ATTR.size + 4:
            return index, struct.unpack_from("=I", payload, offset + _ATTR.size)[0]
        offset += length + (-length % 4)
    return index, None


def parse_error(payload: bytes, flags: int) -> tuple[int, str]:
    """(errno, the kernel's extended-ack message or '') of an NLMSG_ERROR payload."""
    (code,) = struct.unpack_from("=i", payload)
    text = ""
    if flags & NLM_F_ACK_TLVS:
        # the echoed request follows: its header only when capped, else the whole message
        (orig_len,) = struct.unpack_from("=I", payload, 4)
        offset = 4 + (_HDR.size if flags & NLM_F_CAPPED else orig_len)
        offset += -offset % 4
        while offset + _ATTR.size <= len(payload):
            length, kind = _ATTR.unpack_from(payload, offset)
            if length < _ATTR.size:
                break
            if kind & 0x3FFF == NLMSGERR_ATTR_MSG:
                text = payload[offset + 4:offset + length].rstrip(b"\0").decode(errors="replace")
            offset += length + (-length % 4)
    return -code, text


class NetlinkError(OSError):
    """A request the kernel refused: errno, its message, and which request it was."""


class RtnlSocket:
    """A NETLINK_ROUTE socket, bound to the network namespace it was opened in."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # error text from the kernel
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # errors without the request
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RtnlSocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _stamp(self, messages: Sequence[bytes]) -> tuple[bytes, list[int]]:
        out, seqs = [], []
        for msg in messages:
            self._seq += 1
            seqs.append(self._seq)
            out.append(msg[:8] + struct.pack("=I", self._seq) + msg[12:])
        return b"".join(out), seqs

    def _replies(self, pending: set[int], acks: bool = False
                 ) -> list[tuple[int, int, int, bytes]]:
        """Read until every pending sequence number has had its reply or ack (with
        `acks`, its ack: an echoed message comes before it)."""
        got = []
        while pending:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, flags, seq, _pid = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    break
                got.append((seq, kind, flags, data[offset + _HDR.size:offset + length]))
                if not acks or kind == NLMSG_ERROR:
                    pending.discard(seq)
                offset += length + (-length % 4)
        return got

    def request(self, messages: Sequence[bytes], what: Sequence[str] | None = None) -> None:
        """Send the messages, BATCH to a buffer; raise on the first one the kernel refused.

        The kernel carries on after a refused message, so later ones may fail as a
        consequence; the first error is the one reported, named by `what[i]`.
        """
        for start in range(0, len(messages), BATCH):
            self._request(messages[start:start + BATCH],
                          what[start:start + BATCH] if what else None, start, len(messages))

    def create_links(self, messages: Sequence[bytes], what: Sequence[str] | None = None
                     ) -> list[tuple[int, int | None] | None]:
        """Send RTM_NEWLINK requests made with `echo` (as `request`); for each, the new
        link's (index, IFLA_LINK), or None where the kernel echoed nothing (before Linux
        6.3 it ignores NLM_F_ECHO on link creation: look the link up instead)."""
        links: list[tuple[int, int | None] | None] = []
        for start in range(0, len(messages), BATCH):
            echoed: dict[int, tuple[int, int | None]] = {}
            seqs = self._request(messages[start:start + BATCH],
                                 what[start:start + BATCH] if what else None, start,
                                 len(messages), echoed)
            links += [echoed.get(seq) for seq in seqs]
        return links

    def _request(self, messages: Sequence[bytes], what: Sequence[str] | None, base: int,
                 total: int, echoed: dict[int, tuple[int, int | None]] | None = None
                 ) -> list[int]:
        buf, seqs = self._stamp(messages)
        self.sock.sendall(buf)
        first: tuple[int, int, str] | None = None
        for seq, kind, flags, payload in self._replies(set(seqs), acks=echoed is not None):
            if kind == RTM_NEWLINK and echoed is not None:
                echoed[seq] = parse_link(payload)
            if kind != NLMSG_ERROR:
                continue
            code, text = parse_error(payload, flags)
            if code and (first is None or seq < first[0]):
                first = (seq, code, text)
        if first is not None:
            seq, code, text = first
            i = seqs.index(seq)
            label = what[i] if what else f"request {base + i + 1} of {total}"
            detail = f"{os.strerror(code)}" + (f" ({text})" if text else "")
            raise NetlinkError(code, f"{label}: {detail}")
        return seqs

    def link_index(self, name: str) -> int:
        """The index of link `name` in this socket's namespace."""
        buf, (seq,) = self._stamp([link_get(name)])
        self.sock.sendall(buf)
        for got_seq, kind, flags, payload in self._replies({seq}):
            if got_seq != seq:
                continue
            if kind == NLMSG_ERROR:
                code, text = parse_error(payload, flags)
                raise NetlinkError(code, f"link {name}: {os.strerror(code)} {text}".strip())
            if kind == RTM_NEWLINK:
                return _IFINFO.unpack_from(payload)[2]
        raise NetlinkError(errno.EPROTO, f"link {name}: no reply")
