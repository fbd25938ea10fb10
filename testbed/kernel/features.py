"""What this machine's kernel and tools can emulate, probed in one place.

Each probe that needs the kernel runs in a throwaway network namespace (`unshare --net`),
so nothing of the machine's own namespace changes; the namespace goes with the probe's
process. Reported by `testbed doctor` and in every run's metadata.json, and asked by the
lifecycle before it uses a feature (an OVS underlay, say), so a missing one is a one-line
refusal rather than a failure half-way through a bring-up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

# (name, what the testbed uses it for, the command run in a throwaway namespace)
KERNEL_PROBES = (
    ("veth", "pods and nodes (every pod network)",
     ["ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1"]),
    ("bridge", "the Linux-bridge underlay and node bridges (cbr0, docker0)",
     ["ip", "link", "add", "b0", "type", "bridge"]),
    ("vxlan", "VXLAN pod networks (flannel-vxlan, calico-vxlan)",
     ["ip", "link", "add", "v0", "type", "vxlan", "id", "1", "dstport", "4789"]),
    ("netem", "delay, loss and jitter on emulated links (tc netem)",
     ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]),
    ("htb", "rate-limited uplinks (tc htb, as Mininet's TCLink)",
     ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "5:0", "htb", "default", "1"]),
    ("tbf", "rate-limited links (tc tbf)",
     ["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "32kbit",
      "latency", "400ms"]),
    ("ipip", "IP-in-IP pod networks (Calico's IPIP mode)",
     ["ip", "link", "add", "t0", "type", "ipip", "remote", "192.0.2.1"]),
    ("geneve", "Geneve tunnels", ["ip", "link", "add", "g0", "type", "geneve", "id", "1",
                                  "remote", "192.0.2.1"]),
    ("wireguard", "encrypted pod networks (WireGuard)",
     ["ip", "link", "add", "w0", "type", "wireguard"]),
)
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Feature:
    """One capability: present (True), absent (False) or not known (None, with why)."""

    name: str
    present: bool | None
    used_for: str
    detail: str = ""


def _in_throwaway_netns(argv: list[str]) -> tuple[bool | None, str]:
    if os.geteuid() != 0:
        return None, "probing needs root"
    if shutil.which(argv[0]) is None:
        return None, f"{argv[0]} is not installed"
    try:
        res = subprocess.run(["unshare", "--net", *argv], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"the probe did not run: {exc}"
    detail = (res.stderr or res.stdout).strip().splitlines()
    return res.returncode == 0, detail[0][:120] if detail else ""


def openvswitch() -> tuple[bool | None, str]:
    """The OVS datapath (kernel module openvswitch) and a running ovs-vswitchd."""
    if not os.path.isdir("/sys/module/openvswitch"):
        return False, "no openvswitch kernel module loaded (/sys/module/openvswitch)"
    if shutil.which("ovs-vsctl") is None:
        return False, "ovs-vsctl is not installed (Debian/Ubuntu: openvswitch-switch)"
    try:
        res = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True,
                             text=True, timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"ovs-vsctl did not answer: {exc}"
    if res.returncode != 0:
        return False, f"ovs-vswitchd is not running ({res.stderr.strip()[:100]})"
    return True, ""


def _tool(name: str, package: str) -> tuple[bool | None, str]:
    path = shutil.which(name)
    return (True, path) if path else (False, f"not installed (Debian/Ubuntu: {package})")


def kernel_feature(name: str) -> tuple[bool | None, str]:
    """One kernel probe of KERNEL_PROBES by name (what a bring-up asks before using it)."""
    argv = next(a for n, _, a in KERNEL_PROBES if n == name)
    return _in_throwaway_netns(argv)


def probe() -> dict[str, Feature]:
    """Every capability, by name (a few processes, about a second)."""
    out = {}
    for name, used_for, argv in KERNEL_PROBES:
        present, detail = _in_throwaway_netns(argv)
        out[name] = Feature(name, present, used_for, detail)
    present, detail = openvswitch()
    out["openvswitch"] = Feature("openvswitch", present, "the OVS underlay "
                                 "(underlay_switch: ovs)", detail)
    present, detail = _tool("nft", "nftables")
    out["nftables"] = Feature("nftables", present, "kube-proxy's nftables mode", detail)
    present, detail = ipvs()
    out["ipvs"] = Feature("ipvs", present, "kube-proxy's ipvs mode (not emulated)", detail)
    return out


def ipvs() -> tuple[bool | None, str]:
    """The kernel's IP Virtual Server (what kube-proxy's ipvs mode programs)."""
    if os.path.exists("/proc/net/ip_vs") or os.path.isdir("/sys/module/ip_vs"):
        return True, ""
    return False, "no IPVS in this kernel (/proc/net/ip_vs, module ip_vs)"


def as_dict(features: dict[str, Feature]) -> dict[str, Any]:
    """For metadata.json: name -> present, used_for, detail."""
    return {name: {k: v for k, v in asdict(f).items() if k != "name"}
            for name, f in features.items()}
