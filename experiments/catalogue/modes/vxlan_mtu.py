"""mode-vxlan-mtu, a claim of other pod networks:

    VXLAN costs 50 bytes of MTU (a don't-fragment ping of the pod MTU crosses, one byte
    more does not) and wraps pod packets in UDP between the nodes (outer node addresses,
    port 8472, VNI 1, inner pod addresses)

The evidence, kept in raw/mode-vxlan-mtu/evidence.json, is a mapping; the verdict
(`judge_vxlan`, pure) reads its keys

    packets, fits, over, pod_mtu, underlay_mtu, src_ip, dst_ip, capture_point, src,
    src_node_ip, dst_node_ip

and `VxlanMtu.run` gathers them on a cluster of its own."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.modes.common import TOPOLOGIES, ModeClaim, _cluster, _ping
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import Capture, keep_capture
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.errors import TestbedError
from testbed.measure.iproute import ip_json
from testbed.model.load import load_spec
from testbed.model.names import underlay_intf

# `tcpdump -n -v -T vxlan`: the outer IP header (its total length), the outer addresses
# and UDP port with the VNI, the inner IP header (its length), the inner addresses
IP_HEADER = re.compile(r"IP \(tos .*, length (\d+)\)\s*$")


VXLAN_LINE = re.compile(r"(\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.(\d+): "
                        r"VXLAN, flags \[[^\]]*\] \([^)]*\), vni (\d+)")


INNER_LINE = re.compile(r"(\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+): ICMP echo")


VXLAN_OVERHEAD = 50  # outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 (the claim's figure)


def parse_vxlan(text: str) -> list[dict[str, Any]]:
    """Encapsulated ICMP echoes in `tcpdump -n -v -T vxlan` text: outer source,
    destination, UDP port, VNI and IP length (what the underlay carried), inner source,
    destination and IP length (the pod's packet)."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = VXLAN_LINE.search(line)
        if not m or i == 0 or i + 2 >= len(lines):
            continue
        outer, inner_header = IP_HEADER.search(lines[i - 1]), IP_HEADER.search(lines[i + 1])
        inner = INNER_LINE.search(lines[i + 2])
        if outer and inner_header and inner:
            out.append({"outer_src": m.group(1), "outer_dst": m.group(2),
                        "port": int(m.group(3)), "vni": int(m.group(4)),
                        "outer_len": int(outer.group(1)), "inner_src": inner.group(1),
                        "inner_dst": inner.group(2), "inner_len": int(inner_header.group(1))})
    return out


def judge_vxlan(e: Mapping[str, Any]) -> ClaimResult:
    """Everything from the kernels and the wire: the pod's eth0 MTU (netlink) and the
    underlay's (the node's sysfs); the don't-fragment ping that fills the pod MTU seen on
    the underlay, its outer packet 50 bytes longer than the pod's and as long as the
    underlay allows; one byte more refused by the pod's own kernel naming the pod MTU (not
    by some hop further on) and never on the wire."""
    fits, over = e["fits"], e["over"]
    packets = e["packets"]
    if not packets and not fits["ok"]:
        return error(VxlanMtu.name, "nothing crossed the underlay to look at")
    wanted = [p for p in packets if (p["inner_src"], p["inner_dst"]) == (e["src_ip"],
                                                                          e["dst_ip"])]
    full = [p for p in wanted if p["inner_len"] == e["pod_mtu"]]
    too_big = [p for p in wanted if p["inner_len"] > e["pod_mtu"]]
    return judge(
        VxlanMtu.name,
        {"the pod's MTU (its eth0) is the underlay's minus 50":
             e["pod_mtu"] == e["underlay_mtu"] - VXLAN_OVERHEAD,
         "a don't-fragment ping filling the pod MTU crosses": fits["ok"],
         "on the wire it is 50 bytes longer, filling the underlay's MTU": bool(full) and all(
             p["outer_len"] - p["inner_len"] == VXLAN_OVERHEAD
             and p["outer_len"] == e["underlay_mtu"] for p in full),
         "one byte more is refused by the pod's own kernel at its MTU":
             not over["ok"] and f"mtu={e['pod_mtu']}" in over.get("output", ""),
         "and never reaches the underlay": not too_big,
         "on the underlay: node addresses outside, UDP 8472, VNI 1, pod addresses inside":
             bool(wanted) and all(
                 (p["outer_src"], p["outer_dst"], p["port"], p["vni"])
                 == (e["src_node_ip"], e["dst_node_ip"], 8472, 1) for p in wanted)},
        f"pod {e['src']} eth0 MTU {e['pod_mtu']} (from its kernel) on an underlay of "
        f"{e['underlay_mtu']}; ping -M do -s {fits['size']} ({fits['size'] + 28} bytes) "
        f"{'crossed' if fits['ok'] else 'failed'}, -s {over['size']} "
        f"{'crossed' if over['ok'] else 'failed'} ("
        + (over.get("output", "").strip().splitlines() or ["no output"])[-1][:80]
        + f"); {len(wanted)} encapsulated echoes of {e['src_ip']} -> {e['dst_ip']} on "
        f"{e['capture_point']}"
        + (f", e.g. {full[0]['outer_src']} -> {full[0]['outer_dst']}:{full[0]['port']} vni "
           f"{full[0]['vni']}, {full[0]['outer_len']} bytes around the pod's "
           f"{full[0]['inner_len']}" if full else ""),
        {"pod_mtu": e["pod_mtu"], "underlay_mtu": e["underlay_mtu"],
         "encapsulated": len(wanted),
         "outer_len": full[0]["outer_len"] if full else 0},
    )


class VxlanMtu(ModeClaim):
    name = "mode-vxlan-mtu"
    statement = ("VXLAN costs 50 bytes of MTU (a don't-fragment ping of the pod MTU crosses, one "
                 "byte more does not) and wraps pod packets in UDP between the nodes (outer node "
                 "addresses, port 8472, VNI 1, inner pod addresses)")

    def run(self, ctx: Context) -> Iterator[Result]:
        with _cluster(ctx, load_spec(TOPOLOGIES / "flannel-vxlan.yaml")) as c:
            src, dst = "pod-1", "pod-3"
            node = c.pod(src).node
            # over netlink: a pod has no /sys of its own (a `cat /sys/class/net/eth0/mtu`
            # run in its network namespace reads the machine's eth0)
            links = ip_json(c.pod(src).exec(["ip", "-j", "link", "show", "eth0"]),
                            f"{src}'s eth0")
            if len(links) != 1 or not isinstance(links[0].get("mtu"), int):
                raise TestbedError(f"{src}'s eth0: no MTU in {links!r:.200}")
            pod_mtu = links[0]["mtu"]
            underlay_mtu = _sysfs_int(c.exec_node(node, ["cat", f"/sys/class/net/"
                                                         f"{underlay_intf(node)}/mtu"]),
                                      f"{node}'s underlay MTU")
            cap = Capture(c, node, underlay_intf(node), "vxlan-node-1")
            try:
                fits = _ping(c, src, dst, pod_mtu - 28)  # 20 IP + 8 ICMP header bytes
                over = _ping(c, src, dst, pod_mtu - 27)
            finally:
                cap.stop()
            text = c.exec_node(node, ["tcpdump", "-n", "-v", "-T", "vxlan", "-r",
                                      str(cap.pcap), "udp port 8472"]).stdout
            e = {"src": src, "pod_mtu": pod_mtu, "underlay_mtu": underlay_mtu, "fits": fits,
                 "over": over, "src_ip": c.endpoint_ip(src), "dst_ip": c.endpoint_ip(dst),
                 "src_node_ip": c.endpoint_ip(node),
                 "dst_node_ip": c.endpoint_ip(c.pod(dst).node),
                 "capture_point": f"{node} {underlay_intf(node)}",
                 "packets": parse_vxlan(text)}
            keep_capture(ctx, VxlanMtu.name, node, cap, text)
        keep_evidence(ctx, VxlanMtu.name, e)
        yield Verdict(judge_vxlan(e))


def _sysfs_int(res: Any, what: str) -> int:
    """A number read from sysfs in a node or pod (TestbedError when the read failed)."""
    try:
        if res.returncode != 0:
            raise ValueError(res.stderr.strip())
        return int(res.stdout.strip())
    except ValueError as exc:
        raise TestbedError(f"{what}: could not be read ({exc or res.stdout.strip()!r})") \
            from None
