"""Each of the article's claims: the verdict, and the real measurement behind it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from experiments.claims import CLAIMS


@pytest.fixture(scope="module")
def run_dir(quick_run) -> Path:
    return quick_run[0]


@pytest.fixture(scope="module")
def claims(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "claims.csv", keep_default_na=False).set_index("claim")


def numbers(claims: pd.DataFrame, claim: str) -> dict[str, float]:
    text = claims.loc[claim, "numbers"]
    return {k: float(v) for k, v in (item.split("=") for item in text.split("; "))}


def test_every_claim_has_a_verdict_and_the_report_opens_with_them(run_dir: Path,
                                                                   claims: pd.DataFrame) -> None:
    assert list(claims.index) == list(CLAIMS)
    assert set(claims["verdict"]) == {"confirmed"}, claims[["verdict", "evidence"]]
    report = (run_dir / "report.md").read_text()
    assert report.index("## The series' claims") < report.index("## What it shows")
    assert f"{len(CLAIMS)} claims: {len(CLAIMS)} confirmed, 0 refuted, 0 error." in report


def test_shared_localhost(claims: pd.DataFrame) -> None:
    n = numbers(claims, "shared-localhost")
    assert n == {"same_pod_connected": 1, "other_pod_connected": 0}
    assert "Connection refused" in claims.loc["shared-localhost", "evidence"]


def test_port_conflict(claims: pd.DataFrame) -> None:
    evidence = claims.loc["port-conflict", "evidence"]
    assert "[Errno 98] Address already in use" in evidence and "bound 7002" in evidence
    assert numbers(claims, "port-conflict")["other_pod_bind_ok"] == 1


def test_pause_holds_netns(claims: pd.DataFrame) -> None:
    n = numbers(claims, "pause-holds-netns")
    assert n["netns_kept"] == 1 and n["ip_kept"] == 1
    assert n["loss_after_restart_pct"] == 0 and n["loss_after_pause_end_pct"] == 100


def test_docker0_layout_really_loses_cross_node_traffic(run_dir: Path) -> None:
    df = pd.read_csv(run_dir / "measurements.csv")
    docker = df[df["experiment"] == "docker0-collision/docker0"]
    kube = df[df["experiment"] == "docker0-collision/kubenet"]
    assert len(docker) == len(kube) == 12  # every ordered pair of the four pods
    assert (docker[docker["path"] == "pod-cross-node"]["value"] == 100).all()
    assert (docker[docker["path"] == "pod-same-node"]["value"] == 0).all()
    assert (kube["value"] == 0).all()
    assert (run_dir / "reachability_heatmap.png").stat().st_size > 10_000


def test_withdrawn_route_cuts_the_node_off_and_restoring_brings_it_back(
        run_dir: Path, claims: pd.DataFrame) -> None:
    n = numbers(claims, "gateway-routes")
    assert n["loss_before_pct"] == 0
    assert n["loss_withdrawn_pct"] == 100
    assert n["loss_same_node_withdrawn_pct"] == 0
    assert n["loss_restored_pct"] == 0
    trace = (run_dir / "raw" / "gateway-routes" / "traceroute_pod-1_to_pod-3.txt").read_text()
    hops = [line.split()[1] for line in trace.splitlines()[1:]]
    assert hops == ["10.0.0.1", "10.100.0.1", "10.100.0.3", "10.0.1.2"]


def test_masquerade_seen_from_the_receiving_side(run_dir: Path) -> None:
    logs = run_dir / "raw" / "no-masquerade-10-8"
    private = (logs / "ext-10_server.log").read_text()
    outside = (logs / "outside_server.log").read_text()
    assert "from 10.0.0.2" in private and "10.100.0.2" not in private  # the pod's own
    assert "from 10.100.0.2" in outside and "10.0.0.2" not in outside  # the node's


def test_services_claims_rest_on_their_measurements(run_dir: Path,
                                                    claims: pd.DataFrame) -> None:
    split = numbers(claims, "svc-dns-even-split")
    assert split["server-1"] + split["server-2"] == split["connections"] >= 600
    for server in ("server-1", "server-2"):  # each share's interval inside 0.4..0.6
        assert 0.4 <= split[f"{server}_share_low"] <= split[f"{server}_share_high"] <= 0.6
    rewrite = numbers(claims, "svc-rewrite-on-node")
    assert rewrite["vip_packets"] == 0 and rewrite["remote_server_packets"] > 0
    assert rewrite["conntrack_rewritten"] == rewrite["conntrack_vip_entries"] > 0
    proxy = numbers(claims, "svc-userspace-proxy")
    assert proxy["iptables_listening"] == 0 and proxy["userspace_listening"] > 0
    down = numbers(claims, "svc-kube-proxy-down")
    assert down["iptables_after_ok"] == down["iptables_after"] > 0
    assert down["userspace_after_ok"] == 0
    assert down["userspace_after_refused"] == down["userspace_after"] > 0
    assert down["iptables_back_ok"] > 0 and down["userspace_back_ok"] > 0
    ready = numbers(claims, "svc-readiness")
    assert ready["to_unready_pod"] == 0 and ready["while_unready"] > 0 and ready["failed"] == 0
    for claim in [c for c in CLAIMS if c.startswith("svc-")]:
        assert (run_dir / "raw" / claim / "evidence.json").exists(), claim
    for point in ("node-1", "node-2", "router"):  # the captures themselves are kept
        assert (run_dir / "raw" / "svc-rewrite-on-node" / f"capture-{point}.pcap").stat().st_size


def test_outside_claims_rest_on_their_measurements(run_dir: Path,
                                                   claims: pd.DataFrame) -> None:
    from experiments.catalogue.outside.lb_node_down import detection_bound_s

    route = numbers(claims, "out-service-route")
    assert route["before_ok"] == 0 and route["node_down_ok"] == 0 < route["node_back_ok"]
    assert route["with_route_ok"] == route["with_route"] <= route["syns_at_node"]
    nodeport = numbers(claims, "out-nodeport")
    assert nodeport["forwarded_syns"] > 0 and nodeport["served_elsewhere"] > 0
    lb = numbers(claims, "out-load-balancer")
    assert all(lb[f"to_node-{i}"] > 0 for i in (1, 2, 3))
    down = numbers(claims, "out-lb-node-down")
    assert 0 <= down["detection_s"] <= detection_bound_s() and down["lost_after_mark"] == 0
    policy = numbers(claims, "out-traffic-policy")
    assert policy["local_dropped"] > 0 and policy["cluster_ok"] > 0
    hostport = numbers(claims, "out-host-port")
    assert hostport["answered"] > 0 and hostport["refused_elsewhere"] > 0
    for claim in [c for c in CLAIMS if c.startswith("out-")]:
        assert (run_dir / "raw" / claim / "evidence.json").exists(), claim
    for figure in ("out_nodeport_paths.png", "out_lb_paths.png", "out_lb_node_down.png"):
        assert (run_dir / figure).stat().st_size > 1000, figure


def test_pod_network_claims_rest_on_their_measurements(run_dir: Path,
                                                       claims: pd.DataFrame) -> None:
    host_gw = numbers(claims, "mode-host-gw-routes")
    assert host_gw["router_pod_routes"] == 0 and host_gw["cross_ok"] > 0
    assert host_gw["racks_host_gw_cross_ok"] == 0 and host_gw["racks_vxlan_ok"] > 0
    assert host_gw["racks_calico_ok"] > 0
    vxlan = numbers(claims, "mode-vxlan-mtu")
    assert vxlan["pod_mtu"] == 1450 and vxlan["encapsulated"] > 0
    assert vxlan["outer_len"] == vxlan["underlay_mtu"] == 1500
    assert numbers(claims, "mode-kindnet-no-bridge")["bridges"] == 0
    assert (run_dir / "raw" / "mode-vxlan-mtu" / "capture-node-1.pcap").stat().st_size
    calico = numbers(claims, "mode-calico-bgp")
    assert calico["learnt_routes"] == 1 and 0 < calico["converge_s"] < 60
    join = numbers(claims, "mode-calico-join")
    assert 0 < join["leave_s"] < 60 and 0 < join["join_s"] < 60
