"""Constrained links (issue 13): a node's uplink shaped as Mininet's `TCLink` shapes a
link, with loss where the kernel has no netem. Pure: values and argument lists.

In a topology file, a default for every node's uplink and a node's own settings, which
override it field by field:

    links: {rate_mbit: 100, loss_pct: 1}
    nodes:
      - {name: node-1, pods: 2, uplink: {rate_mbit: 50}}

- `rate_mbit`: HTB on both ends of the uplink, as Mininet's TCIntf does (`tc qdisc add
  dev X root handle 5:0 htb default 1`, `tc class add dev X parent 5:0 classid 5:1 htb
  rate <r>Mbit burst 15k`): the node's end shapes what it sends, the underlay bridge's
  port what it receives;
- `loss_pct`: each packet crossing the uplink, either way, dropped with that probability:
  netem's `loss` under the HTB class where the kernel has netem, else two iptables rules
  in the node (`-m statistic --mode random`, mangle PREROUTING in and POSTROUTING out);
- `delay_ms`, `jitter_ms`: netem only (each end adds half the delay, so a round trip
  across one uplink takes `delay_ms` more); refused, naming the missing module, where the
  kernel has no netem.
"""

from __future__ import annotations

from dataclasses import dataclass

HTB_HANDLE = "5:0"
HTB_CLASS = "5:1"
NETEM_HANDLE = "10:"
BURST = "15k"  # Mininet's TCIntf burst
MAX_RATE_MBIT = 100_000.0
# HTB counts whole Ethernet frames: a full TCP segment carries 1448 bytes of payload in a
# 1514-byte frame (timestamps on), so TCP goodput tops out at this share of the rate
TCP_SHARE = 1448 / 1514
# a shaped path's TCP throughput outside [LOW, HIGH] x its ceiling: the link did not do
# what it was configured to do (Mininet-HiFi's "achieved the configured rate" check)
RATE_LOW, RATE_HIGH = 0.9, 1.05


@dataclass(frozen=True)
class LinkSpec:
    """How a node's uplink is constrained; every field optional (None / 0: not at all)."""

    rate_mbit: float | None = None
    loss_pct: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0

    @property
    def shaped(self) -> bool:
        return self.rate_mbit is not None or self.loss_pct > 0 or self.delay_ms > 0

    @property
    def needs_netem(self) -> bool:
        """Delay and jitter have no substitute without netem (loss has)."""
        return self.delay_ms > 0 or self.jitter_ms > 0

    def merged(self, over: LinkSpec | None, given: frozenset[str] = frozenset()) -> LinkSpec:
        """This default with the fields `given` in a node's own `over` replacing it."""
        if over is None:
            return self
        return LinkSpec(**{f: getattr(over if f in given else self, f)
                           for f in ("rate_mbit", "loss_pct", "delay_ms", "jitter_ms")})

    def to_dict(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.rate_mbit is not None:
            out["rate_mbit"] = self.rate_mbit
        for name in ("loss_pct", "delay_ms", "jitter_ms"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    def describe(self) -> str:
        parts = []
        if self.rate_mbit is not None:
            parts.append(f"{self.rate_mbit:g} Mbit/s")
        if self.loss_pct:
            parts.append(f"{self.loss_pct:g} % loss")
        if self.delay_ms:
            parts.append(f"{self.delay_ms:g} ms" + (f" ± {self.jitter_ms:g}" if self.jitter_ms
                                                     else ""))
        return ", ".join(parts) or "unconstrained"


def tc_commands(intf: str, link: LinkSpec, netem: bool) -> list[list[str]]:
    """The `tc` argument lists that shape one end of a link (run where `intf` lives):
    HTB with the rate, and under it netem for delay (half at each end) and loss when the
    kernel has netem. Nothing for an unconstrained link."""
    out: list[list[str]] = []
    parent = ["root"]
    if link.rate_mbit is not None:
        out += [["tc", "qdisc", "add", "dev", intf, "root", "handle", HTB_HANDLE, "htb",
                 "default", "1"],
                ["tc", "class", "add", "dev", intf, "parent", HTB_HANDLE, "classid",
                 HTB_CLASS, "htb", "rate", f"{link.rate_mbit:g}Mbit", "burst", BURST]]
        parent = ["parent", HTB_CLASS]
    netem_args: list[str] = []
    if netem and link.delay_ms:
        netem_args += ["delay", f"{link.delay_ms / 2:g}ms"]
        if link.jitter_ms:
            netem_args.append(f"{link.jitter_ms / 2:g}ms")
    if netem and link.loss_pct:
        netem_args += ["loss", f"{link.loss_pct:g}%"]
    if netem_args:
        out.append(["tc", "qdisc", "add", "dev", intf, *parent, "handle", NETEM_HANDLE,
                    "netem", *netem_args])
    return out


def loss_rules(intf: str, link: LinkSpec) -> list[list[str]]:
    """Loss without netem: iptables in the node, each direction of its uplink dropping a
    packet with probability loss_pct / 100 (mangle: before routing in, after it out)."""
    if not link.loss_pct:
        return []
    p = f"{link.loss_pct / 100:.6f}".rstrip("0").rstrip(".")
    stat = ["-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"]
    return [["iptables", "-w", "-t", "mangle", "-A", "PREROUTING", "-i", intf, *stat],
            ["iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", intf, *stat]]


def tcp_ceiling_bps(*links: LinkSpec) -> float | None:
    """The most TCP can carry across these uplinks (the slowest rate's TCP share);
    None when none of them is rate-limited."""
    rates = [link.rate_mbit for link in links if link.rate_mbit is not None]
    return min(rates) * 1e6 * TCP_SHARE if rates else None


def rate_check(measured_bps: float, ceiling_bps: float | None) -> str | None:
    """Why a shaped path's throughput is not to be trusted, or None: well under its
    ceiling (the emulation could not keep up, or something else shared the link) or over
    it (the shaping did not hold)."""
    if ceiling_bps is None or ceiling_bps <= 0:
        return None
    share = measured_bps / ceiling_bps
    if share < RATE_LOW:
        return (f"the shaped link carried {measured_bps / 1e6:.1f} of its "
                f"{ceiling_bps / 1e6:.1f} Mbit/s TCP ceiling ({share:.0%}, under "
                f"{RATE_LOW:.0%})")
    if share > RATE_HIGH:
        return (f"the shaped link carried {measured_bps / 1e6:.1f} Mbit/s, over its "
                f"{ceiling_bps / 1e6:.1f} Mbit/s TCP ceiling: the shaping did not hold")
    return None
