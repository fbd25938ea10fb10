"""kube-proxy's modes as plug-ins: the pure classes (testbed.model.svc.modes) and their
process side (testbed.proxy.modes) name the same modes, each says which tools it runs,
and everything that took a mode name as a literal now asks the registry. Nothing here
touches the kernel: the process side is only constructed, or run with its commands
recorded instead of executed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from testbed.cluster import preflight
from testbed.errors import MissingDependencyError, SpecError, UsageError
from testbed.model.load import parse_spec
from testbed.model.load.services import KUBE_PROXY_MODES
from testbed.model.spec import DEFAULT_KUBE_PROXY_MODE
from testbed.model.svc import iptables as ipt
from testbed.model.svc import nftables as nft
from testbed.model.svc.config import ProxyConfig
from testbed.model.svc.modes import (
    PROXY_MODES,
    IptablesMode,
    NftablesMode,
    ProxyMode,
    UserspaceMode,
    proxy_mode,
)
from testbed.proxy import kubeproxy
from testbed.proxy.common import netfilter
from testbed.proxy.common.state import ProxyState
from testbed.proxy.modes import PROXIERS, proxier
from testbed.proxy.modes import iptables as ipt_mode
from testbed.proxy.modes import nftables as nft_mode

from .test_spec_services import ARTICLE_YAML

MODES = ("iptables", "nftables", "userspace")


# -- the registries ---------------------------------------------------------------------

def test_the_modes_in_their_order_the_default_among_them() -> None:
    assert PROXY_MODES.names == MODES == PROXIERS.names == KUBE_PROXY_MODES
    assert DEFAULT_KUBE_PROXY_MODE in PROXY_MODES


def test_each_process_side_is_its_pure_mode_with_start_sync_cleanup() -> None:
    for name in MODES:
        pure, process = PROXY_MODES[name], PROXIERS[name]
        assert issubclass(process, pure) and issubclass(pure, ProxyMode)
        assert process.name == pure.name == name and pure.description
        assert isinstance(process.partial_syncs, bool)
        made = proxier(name, "node-1", "10.100.0.2")  # constructing touches nothing
        assert made.proxy_ports == {}
        assert all(callable(getattr(made, m)) for m in ("start", "sync", "cleanup"))


def test_an_unknown_mode_lists_the_modes() -> None:
    for lookup in (lambda: proxy_mode("ipvs"), lambda: proxier("ebpf", "n", "")):
        with pytest.raises(UsageError, match="^unknown kube-proxy mode '.*'; the kube-proxy "
                           "modes are iptables, nftables, userspace$"):
            lookup()


# -- each mode's pure surface: its name and the tools preflight checks -------------------

def test_iptables_mode() -> None:
    assert IptablesMode.name == "iptables" and proxy_mode("iptables") is IptablesMode
    assert IptablesMode.tools == {"iptables-restore": "iptables", "iptables-save": "iptables",
                                  "iptables": "iptables", "conntrack": "conntrack"}
    assert PROXIERS["iptables"].partial_syncs


def test_nftables_mode() -> None:
    assert NftablesMode.name == "nftables" and proxy_mode("nftables") is NftablesMode
    assert NftablesMode.tools == {"nft": "nftables", "conntrack": "conntrack"}
    assert PROXIERS["nftables"].partial_syncs


def test_userspace_mode() -> None:
    assert UserspaceMode.name == "userspace" and proxy_mode("userspace") is UserspaceMode
    assert UserspaceMode.tools == {"iptables-restore": "iptables",
                                   "iptables-save": "iptables", "iptables": "iptables"}
    assert not PROXIERS["userspace"].partial_syncs  # its portal rules are written whole


# -- the callers take the modes from the registry ---------------------------------------

def test_the_topology_file_refuses_an_unknown_mode_listing_the_modes() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**yaml.safe_load(ARTICLE_YAML), "kube_proxy_mode": "ebpf"}, "t.yaml")
    assert info.value.field == "kube_proxy_mode"
    assert info.value.problem == "'ebpf' is not one of iptables, nftables, userspace"


def test_kube_proxy_command_line_offers_the_registered_modes(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        kubeproxy.main(["--dir", "/nonexistent", "--node", "n", "--mode", "ebpf"])
    assert info.value.code == 2
    assert "(choose from 'iptables', 'nftables', 'userspace')" in capsys.readouterr().err


@pytest.mark.parametrize("mode", MODES)
def test_preflight_checks_the_tools_of_the_topology_s_mode(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = proxy_mode(mode).tools
    absent = {"nft", "iptables-save"}
    monkeypatch.setattr(preflight.shutil, "which",
                        lambda tool: None if tool in absent else f"/bin/{tool}")
    spec = parse_spec({**yaml.safe_load(ARTICLE_YAML), "kube_proxy_mode": mode})
    with pytest.raises(MissingDependencyError) as info:
        preflight.check_features(spec)
    assert str(info.value).startswith(
        f"services need {', '.join(t for t in wanted if t in absent)}: ")


# -- the process side: the shared timing in KubeProxy, a mode's commands -----------------

class _Recorded:
    """A mode that records what kube-proxy asked of it."""

    name, tools, partial_syncs = "recorded", {}, True

    def __init__(self) -> None:
        self.proxy_ports: dict[str, int] = {}
        self.calls: list[tuple[str, bool]] = []

    def start(self) -> None:
        self.calls.append(("start", True))

    def sync(self, state: ProxyState, config: ProxyConfig, full: bool) -> str:
        self.calls.append(("sync", full))
        self.proxy_ports = {"default/s:80/TCP": 40000 + len(self.calls)}
        if state.generation < 0:
            raise RuntimeError("refused")
        return "payload\n"

    def cleanup(self) -> None:
        self.calls.append(("cleanup", True))


class _NoHealth:
    errors: list[str] = []

    def start(self) -> None:
        pass


def _state(generation: int, cidr: str = "10.0.0.0/14") -> ProxyState:
    return ProxyState(generation=generation, mode="iptables", services=(), cluster_cidr=cidr)


def _kube_proxy(mode: _Recorded) -> kubeproxy.KubeProxy:
    kp = kubeproxy.KubeProxy(Path("/nonexistent"), "node-1", "10.100.0.2", "iptables")
    kp.proxier, kp.health = mode, _NoHealth()  # type: ignore[assignment]
    return kp


def test_kube_proxy_starts_the_mode_once_then_syncs_full_then_partial() -> None:
    mode = _Recorded()
    kp = _kube_proxy(mode)
    assert kp.sync(_state(1)) == "payload\n" and kp.full
    kp.sync(_state(2))
    assert not kp.full
    kp.sync(_state(3, "10.0.0.0/15"))  # a new configuration: a full sync
    assert mode.calls == [("start", True), ("sync", True), ("sync", False), ("sync", True)]
    assert kp.status.proxy_ports == {"default/s:80/TCP": 40004}


def test_a_mode_without_partial_syncs_always_syncs_full() -> None:
    mode = _Recorded()
    mode.partial_syncs = False
    kp = _kube_proxy(mode)
    kp.sync(_state(1))
    kp.sync(_state(2))
    assert mode.calls[1:] == [("sync", True), ("sync", True)] and kp.full


def test_a_failed_sync_still_reports_the_ports_the_mode_opened() -> None:
    kp = _kube_proxy(_Recorded())
    with pytest.raises(RuntimeError):
        kp.sync(_state(-1))
    assert kp.status.proxy_ports == {"default/s:80/TCP": 40002}


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[str, ...], str | None]]:
    """The commands a mode runs, recorded: `-C`/`-S` find nothing, `-D` deletes once,
    iptables-save lists a service chain of ours and a chain of someone else's."""
    ran: list[tuple[tuple[str, ...], str | None]] = []
    deleted: set[tuple[str, ...]] = set()

    def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        ran.append((tuple(argv), stdin))
        rc, out = 0, ""
        if "-C" in argv or "-S" in argv:
            rc = 1
        elif "-D" in argv:
            rc = 1 if tuple(argv) in deleted else 0
            deleted.add(tuple(argv))
        elif argv[0] == "iptables-save":
            out = ":KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:OTHER - [0:0]\n"
        return subprocess.CompletedProcess(argv, rc, out, "")

    monkeypatch.setattr(netfilter, "run", run)
    for module in (ipt_mode, nft_mode):
        monkeypatch.setattr(module, "run", run)
    return ran


def test_iptables_sync_applies_its_renderer_s_payload(commands: list) -> None:
    state = _state(1)
    config = ProxyConfig(node="node-1", cluster_cidr=state.cluster_cidr)
    payload = PROXIERS["iptables"]("node-1", "").sync(state, config, True)
    nat = frozenset({"KUBE-SERVICES", "KUBE-SVC-AAAAAAAAAAAAAAAA", "OTHER"})
    assert payload == ipt.render_sync((), config, nat, ()).payload
    assert commands[-1] == (("iptables-restore", "-w", "5", "--noflush"), payload)


def test_iptables_cleanup_removes_its_jumps_and_chains_only(commands: list) -> None:
    PROXIERS["iptables"]("", "").cleanup()
    restores = [stdin for argv, stdin in commands if argv[0] == "iptables-restore"]
    assert restores[0] == ("*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - "
                           "[0:0]\n-X KUBE-SERVICES\n-X KUBE-SVC-AAAAAAAAAAAAAAAA\nCOMMIT\n")
    assert all("OTHER" not in s for s in restores)
    deletes = {argv[argv.index("-D") + 1] for argv, _ in commands if "-D" in argv}
    assert deletes == {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}


def test_nftables_cleanup_deletes_its_table(commands: list) -> None:
    PROXIERS["nftables"]("", "").cleanup()
    assert commands == [(("nft", "delete", "table", nft.FAMILY, nft.TABLE), None)]
