"""The set-up's decisions per system, without root: `scripts/setup.sh --plan` with a fake
/etc/os-release, a fake dpkg-query (nothing installed), and a system Python that can or
cannot import Mininet (a source install, as on the Mininet VM image)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
COMMON = ("bridge-utils iproute2 iputils-ping iperf3 frr iptables conntrack traceroute "
          "nftables dnsmasq-base tcpdump curl haproxy nginx-light bird2 cgroup-tools util-linux "
          "procps "
          "python3-venv python3-pip git make")


def plan(tmp_path: Path, release: str, *, mininet_from_source: bool = False,
         cni_by_hand: bool = False, catatonit_by_hand: bool = False) -> tuple[int, dict]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    os_id, version = release.split("-")
    (tmp_path / "os-release").write_text(f'ID={os_id}\nVERSION_ID="{version}"\n')
    tools = {"dpkg-query": "exit 1",  # nothing is installed
             "python3": "exit 0" if mininet_from_source else "exit 1"}
    if mininet_from_source:
        tools["mnexec"] = "exit 0"
    if catatonit_by_hand:
        tools["catatonit"] = "exit 0"
    for tool, body in tools.items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    for tool in ("dirname", "grep", "tr"):  # all the plan needs of the system: no
        link = bin_dir / tool                 # catatonit, mnexec or mininet but the fakes
        if not link.exists():
            link.symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    cni = tmp_path / "cni"
    cni.mkdir(exist_ok=True)
    if cni_by_hand:
        for plugin in ("bridge", "host-local", "loopback"):
            (cni / plugin).write_text("#!/bin/sh\n")
            (cni / plugin).chmod(0o755)
    env = {"PATH": str(bin_dir), "KTESTBED_OS_RELEASE": str(tmp_path / "os-release"),
           "KTESTBED_SYSTEM_PYTHON": str(bin_dir / "python3"), "KTESTBED_CNI_DIR": str(cni)}
    res = subprocess.run([BASH, str(ROOT / "scripts" / "setup.sh"), "--plan"], env=env,
                         capture_output=True, text=True, timeout=30)
    out: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition(": ")
        out.setdefault(key, []).append(value)
    return res.returncode, out


@pytest.mark.parametrize("release", ["debian-12", "ubuntu-22.04", "ubuntu-24.04"])
def test_packaged_releases_install_everything(tmp_path: Path, release: str) -> None:
    code, out = plan(tmp_path, release)
    assert code == 0 and out["system"] == [release]
    assert out["packages"] == [f"{COMMON} containernetworking-plugins catatonit mininet"]
    assert out["to install"][0].split() == out["packages"][0].split()
    assert "note" not in out


def test_a_mininet_from_source_is_used_not_replaced(tmp_path: Path) -> None:
    code, out = plan(tmp_path, "ubuntu-22.04", mininet_from_source=True)
    assert code == 0 and "mininet" not in out["packages"][0].split()
    assert any("used as it is, not replaced" in n for n in out["note"])


def test_ubuntu_20_04_needs_the_plugins_and_catatonit_by_hand(tmp_path: Path) -> None:
    code, out = plan(tmp_path, "ubuntu-20.04", mininet_from_source=True)
    assert code == 1 and "no containernetworking-plugins package" in out["refused"][0]
    code, out = plan(tmp_path, "ubuntu-20.04", mininet_from_source=True, cni_by_hand=True)
    assert code == 1 and "no catatonit package" in out["refused"][0]
    code, out = plan(tmp_path, "ubuntu-20.04", mininet_from_source=True, cni_by_hand=True,
                     catatonit_by_hand=True)
    assert code == 0 and out["packages"] == [COMMON]  # the Mininet VM image: nothing else
    assert any("installed by hand" in n for n in out["note"])


@pytest.mark.parametrize("release", ["ubuntu-18.04", "fedora-40", "debian-11"])
def test_other_systems_are_refused_in_one_line(tmp_path: Path, release: str) -> None:
    code, out = plan(tmp_path, release)
    assert code == 1 and out["refused"][0].startswith(f"unsupported system '{release}'")


def test_a_real_run_refuses_without_root_or_on_an_unsupported_system(tmp_path: Path) -> None:
    (tmp_path / "os-release").write_text("ID=fedora\nVERSION_ID=40\n")
    res = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")],
                         env={**os.environ, "KTESTBED_OS_RELEASE": str(tmp_path / "os-release")},
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and res.stderr.startswith("setup: unsupported system 'fedora-40'")
