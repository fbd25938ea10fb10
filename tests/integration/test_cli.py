"""The `testbed` command as users type it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, machine_snapshot

TESTBED = str(Path(sys.executable).parent / "testbed")
TWO_NODE = str(ROOT / "topologies" / "two-node.yaml")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([TESTBED, *args], capture_output=True, text=True, timeout=120,
                          input=stdin)


def test_up_script_runs_commands_then_tears_down(tmp_path: Path) -> None:
    before = machine_snapshot()
    script = tmp_path / "cmds"
    script.write_text("# list, then ping across nodes by pod name\npods\n"
                      "pod-1 ping -c1 -W1 pod-4\nroutes\nnode-2 ip -br addr show cbr0\n")
    res = run("up", TWO_NODE, "--script", str(script))
    assert res.returncode == 0, res.stderr
    assert "ktb-node-2-pod-4" in res.stdout and "10.0.1.3" in res.stdout
    assert "1 received" in res.stdout and "ttl=61" in res.stdout
    assert "10.0.1.0/24 via 10.100.0.3" in res.stdout
    assert "10.0.1.1/24" in res.stdout
    assert machine_snapshot() == before


def test_up_fails_when_a_command_fails() -> None:
    res = run("up", TWO_NODE, "-c", "pod-1 ping -c1 -W1 10.0.9.9", "-c", "pods")
    assert res.returncode == 1
    assert "1 command(s) failed: pod-1 ping -c1 -W1 10.0.9.9" in res.stderr


def test_invalid_topology_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    before = machine_snapshot()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncluster_cidr: 10.0.0.0/14\nnodes:\n  - name: node-1\n    podz: 2\n")
    res = run("up", str(bad), "-c", "pods")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "nodes[0].podz" in res.stderr and "Traceback" not in res.stderr
    assert machine_snapshot() == before


def test_pods_and_containers_come_and_go_from_the_cli() -> None:
    res = run("up", TWO_NODE, "-c", "addpod node-2 extra", "-c", "pod-1 ping -c1 -W1 extra",
              "-c", "addcontainer extra app sleep infinity", "-c", "pods",
              "-c", "delcontainer extra app", "-c", "delpod extra", "-c", "pods",
              "-c", "py cluster.pod('pod-1').ip")
    assert res.returncode == 0, res.stderr
    assert "pod extra on node-2: 10.0.1.4/24 (netns ktb-node-2-extra)" in res.stdout
    assert "ttl=61" in res.stdout
    listings = [block for block in res.stdout.split("pod    node") if "pod-1" in block]
    assert "extra" in listings[0] and "app" in listings[0]
    assert "extra" not in listings[1]
    assert "10.0.0.2/24" in res.stdout  # the py command sees the cluster


def test_services_as_the_readme_shows_them() -> None:
    """The README's Services command: a pod reaches a service by name, `iptables-save`
    in a node shows kube-proxy's chains, the CLI lists services and switches modes."""
    before = machine_snapshot()
    res = run("up", str(ROOT / "topologies" / "services.yaml"), "-c", "services",
              "-c", 'client curl -s http://service-test/ -o /dev/null -w "%{http_code}\\n"',
              "-c", "node-1 iptables-save -t nat", "-c", "proxymode nftables",
              "-c", "client curl -s -o /dev/null -w %{http_code} http://service-test/",
              "-c", "killproxy node-2", "-c", "startproxy node-2")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "default/service-test" in out and "10.3.241.152" in out
    assert "server-1 10.0.0.4" in out and "kube-system/kube-dns" in out
    assert out.count("200") >= 2
    assert ":KUBE-SERVICES - [0:0]" in out and "-j KUBE-SVC-" in out
    assert "nftables mode on every node" in out and "running and synced" in out
    assert machine_snapshot() == before


def test_traffic_from_outside_as_the_readme_shows_it() -> None:
    """The README's outside command: services with their load-balancer addresses, the
    load balancer's view, an external host's requests, a node off the underlay and back."""
    before = machine_snapshot()
    res = run("up", str(ROOT / "topologies" / "outside.yaml"), "-c", "services", "-c", "lb",
              "-c", 'internet-client curl -s http://203.0.113.100/ -o /dev/null '
                    '-w "%{http_code}\\n"',
              "-c", 'internet-client curl -s -H "Host: other.example" '
                    'http://203.0.113.102/cart',
              "-c", "uplink node-2 down", "-c", "uplink node-2 up",
              "-c", "internet-client curl -s -o /dev/null -w %{http_code} "
                    "http://10.100.0.3:30080/")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "load balancer 203.0.113.100" in out and "externalTrafficPolicy Local" in out
    assert "default.web-local.80: 203.0.113.101:80 -> node port 30081" in out
    assert "node-3       DOWN" in out  # web-local: no web pod on node-3
    assert "default backend - 404" in out
    assert "node-2: underlay port down" in out and "node-2: underlay port up" in out
    assert out.count("200") >= 2
    assert machine_snapshot() == before


def test_a_node_stopped_and_started_from_the_cli(tmp_path: Path) -> None:
    """`node <node> stop|start`, and `--timings` written after teardown."""
    before = machine_snapshot()
    timings = tmp_path / "t.json"
    res = run("up", TWO_NODE, "--timings", str(timings), "-c", "node node-2 stop",
              "-c", "pod-1 ping -c1 -W1 pod-3", "-c", "node node-2 start",
              "-c", "pod-1 ping -c1 -W2 pod-3", "-c", "node node-2 restart")
    assert res.returncode == 1  # the unreachable ping and the bad verb, no more
    assert "node-2: stopped, " in res.stdout and " processes frozen" in res.stdout
    assert "node-2: started" in res.stdout and "1 received" in res.stdout
    assert "usage: node <node> stop|start" in res.stderr
    assert "2 command(s) failed" in res.stderr
    stages = json.loads(timings.read_text())
    assert stages["up_s"] > 0 and stages["down_s"] > 0 and "pods.spawn_s" in stages
    assert machine_snapshot() == before
