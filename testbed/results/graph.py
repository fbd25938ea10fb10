"""A drawing of the cluster as built (issue 13): the router, the underlay (a bar a rack,
or a bar a row of nodes), each node with its address, pod CIDR and bridge, its pods with
their addresses, constrained uplinks marked (dashed, red, with the constraint) and
nodes' CPU shares.

    testbed graph topologies/two-node.yaml -o cluster.svg     # no root; .svg or .png

From a topology file the pods' addresses are the ones host-local hands out on a fresh
node where that is predictable (bridge modes: the pod CIDR's addresses after the
gateway); a run's report draws the addresses the pods really got. Nodes go five to a row,
so twenty nodes make four rows and every label keeps its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from testbed.model.addressing import AddressPlan
from testbed.model.names import ROUTER
from testbed.model.spec import ClusterSpec

PER_ROW = 5
MAX_PODS_SHOWN = 8
NODE_W, GAP_X = 3.0, 0.5  # inches
ROUTER_H, BAR_GAP = 0.9, 0.55
POD_LINE = 0.2


def predicted_pod_ips(spec: ClusterSpec, plan: AddressPlan, bridge: str | None
                      ) -> dict[str, str]:
    """Pod addresses as host-local hands them out on a fresh node (bridge modes only:
    elsewhere the first address depends on the mode's IPAM, so none is guessed)."""
    if bridge is None:
        return {}
    out = {}
    for node, node_plan in zip(spec.nodes, plan.nodes):
        for pod, ip in zip(node.pods, node_plan.expected_pod_ips(len(node.pods))):
            out[pod.name] = str(ip)
    return out


def _rows(spec: ClusterSpec, plan: AddressPlan) -> list[tuple[str, list[int]]]:
    """(label of the underlay bar, node indices) a row: a rack's nodes, five to a row."""
    groups: list[tuple[str, list[int]]] = []
    if plan.racks:
        for rack in plan.racks:
            idx = [n.index for n in plan.nodes if n.rack == rack.name]
            label = f"{rack.name} {rack.network} (router {rack.router_ip.ip})"
            groups.append((label, idx))
    else:
        groups.append((f"underlay {spec.underlay} (router {plan.router_ip.ip})",
                       [n.index for n in plan.nodes]))
    rows = []
    for label, idx in groups:
        for start in range(0, max(len(idx), 1), PER_ROW):
            rows.append((label if start == 0 else f"{label}, continued",
                         idx[start:start + PER_ROW]))
    return rows


def figure(spec: ClusterSpec, plan: AddressPlan, bridge: str | None, mode: str,
           pod_ips: Mapping[str, str] | None = None,
           router_routes: list[str] | None = None) -> Any:
    """The matplotlib figure of the cluster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    pod_ips = dict(pod_ips or {})
    rows = _rows(spec, plan)
    pods_h = [min(max((len(spec.nodes[i].pods) for i in idx), default=0),
                  MAX_PODS_SHOWN + 1) * POD_LINE for _, idx in rows]
    node_h = [1.05 + h for h in pods_h]
    width = PER_ROW * (NODE_W + GAP_X) + GAP_X if len(spec.nodes) > 1 else 2 * NODE_W
    width = min(width, max(len(idx) for _, idx in rows) * (NODE_W + GAP_X) + GAP_X + 2.0)
    width = max(width, 7.0)
    height = ROUTER_H + 0.9 + sum(0.15 + BAR_GAP + h + 0.5 for h in node_h)
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    top = height - 0.25
    # the router
    rx = width / 2
    ax.add_patch(FancyBboxPatch((rx - 1.6, top - ROUTER_H), 3.2, ROUTER_H - 0.1,
                                boxstyle="round,pad=0.05", fc="#fdebd0", ec="#a04000"))
    routes = router_routes if router_routes is not None else []
    ax.text(rx, top - 0.3, f"{ROUTER} (FRR)", ha="center", va="center", fontsize=9,
            weight="bold")
    shown = routes[:2] + ([f"... {len(routes) - 2} more route(s)"] if len(routes) > 2 else [])
    ax.text(rx, top - 0.62, "\n".join(shown) if shown else f"pod network: {mode}",
            ha="center", va="center", fontsize=6.5, linespacing=1.3)
    y = top - ROUTER_H - 0.35
    trunk = 0.15  # the router's links to the later bars run down the left margin
    first_bar = y - 0.15
    ax.plot([rx, rx], [top - ROUTER_H, first_bar], color="#1f618d", linewidth=1)
    for (label, idx), h in zip(rows, node_h):
        bar_y = y - 0.15
        ax.plot([0.3, width - 0.3], [bar_y, bar_y], color="#1f618d", linewidth=2.5)
        if bar_y != first_bar:
            ax.plot([trunk, trunk, 0.3], [first_bar, bar_y, bar_y], color="#1f618d",
                    linewidth=1)
        ax.text(0.35, bar_y + 0.08, label, fontsize=7, color="#1f618d", va="bottom")
        y_box_top = bar_y - BAR_GAP
        for col, i in enumerate(idx):
            node, node_plan = spec.nodes[i], plan.nodes[i]
            x = GAP_X + col * (NODE_W + GAP_X)
            cx = x + NODE_W / 2
            shaped = node.uplink.shaped
            ax.plot([cx, cx], [bar_y, y_box_top], color="#c0392b" if shaped else "#1f618d",
                    linewidth=1.5 if shaped else 1, linestyle="--" if shaped else "-")
            if shaped:
                ax.text(cx + 0.05, (bar_y + y_box_top) / 2, node.uplink.describe(),
                        fontsize=6, color="#c0392b", va="center")
            ax.add_patch(FancyBboxPatch((x, y_box_top - h), NODE_W, h,
                                        boxstyle="round,pad=0.04", fc="#eaf2f8",
                                        ec="#1f618d"))
            lines = [(f"{node.name}  {node_plan.underlay_ip.ip}", 8, "bold"),
                     (f"pod CIDR {node_plan.pod_cidr}", 7, "normal"),
                     ((f"{bridge} {node_plan.bridge_ip.ip}" if bridge else
                       "no bridge (routed veths)")
                      + (f"  cpu {node.cpu:.0%}" if node.cpu is not None else ""), 7, "normal")]
            for k, (text, size, weight) in enumerate(lines):
                ax.text(x + 0.12, y_box_top - 0.2 - 0.22 * k, text, fontsize=size,
                        weight=weight, va="center")
            for k, pod in enumerate(node.pods[:MAX_PODS_SHOWN]):
                ip = pod_ips.get(pod.name, "")
                ax.text(x + 0.3, y_box_top - 0.92 - POD_LINE * k,
                        f"{pod.name}  {ip}".rstrip(), fontsize=6.5, va="center",
                        family="monospace")
            if len(node.pods) > MAX_PODS_SHOWN:
                ax.text(x + 0.3, y_box_top - 0.92 - POD_LINE * MAX_PODS_SHOWN,
                        f"... and {len(node.pods) - MAX_PODS_SHOWN} more pods", fontsize=6.5,
                        va="center", style="italic")
        y = y_box_top - h - 0.5
    return fig


def render(spec: ClusterSpec, plan: AddressPlan, bridge: str | None, mode: str, fmt: str,
           pod_ips: Mapping[str, str] | None = None,
           router_routes: list[str] | None = None) -> bytes:
    """The drawing as SVG or PNG bytes."""
    import io

    import matplotlib.pyplot as plt

    # SVG text stays text: searchable, selectable, and a tenth of the size of paths
    with plt.rc_context({"svg.fonttype": "none"}):
        fig = figure(spec, plan, bridge, mode, pod_ips, router_routes)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=110 if fmt == "png" else None)
        plt.close(fig)
    return buf.getvalue()
