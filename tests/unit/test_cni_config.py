"""The pure half of the CNI wiring: kubenet's MTU rule, its configs, and result parsing."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from testbed.errors import TestbedError
from testbed.model.podnet.kubenet import kubenet_config, kubenet_mtu
from testbed.pods.cni import CniResult, loopback_config, parse_result


@pytest.mark.parametrize(
    ("mtus", "expected"),
    [
        ({"lo": 65536, "eth0": 1500, "cbr0": 1450}, 1450),
        ({"lo": 65536}, 1460),  # kubenet's fallback
        ({}, 1460),
        ({"lo": 65536, "node-1-eth0": 9000, "cbr0": 1500}, 1500),
        ({"lo": 1280, "eth0": 1500}, 1500),  # loopback never counts, even when smallest
        ({"eth0": 0, "cbr0": 1400}, 1400),  # an unknown (0) MTU is ignored
        ({"lo": 65536, "eth0": 0}, 1460),
    ],
)
def test_kubenet_mtu(mtus: dict[str, int], expected: int) -> None:
    assert kubenet_mtu(mtus) == expected


def test_kubenet_config_is_exactly_kubenets_bridge_config() -> None:
    config = kubenet_config(
        IPv4Network("10.0.0.0/24"), IPv4Interface("10.0.0.1/24"), 1450,
        Path("/run/testbed/ipam/node-1"),
    )
    assert config == {
        "cniVersion": "0.4.0",
        "name": "kubenet",
        "type": "bridge",
        "bridge": "cbr0",
        "mtu": 1450,
        "addIf": "eth0",
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "subnet": "10.0.0.0/24",
            "gateway": "10.0.0.1",
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "/run/testbed/ipam/node-1",
        },
    }
    # Booleans stay booleans (the plugin decodes JSON, so "true" would be wrong).
    for key in ("isGateway", "ipMasq", "hairpinMode"):
        assert type(config[key]) is bool
    assert type(config["mtu"]) is int


def test_kubenet_config_follows_its_arguments(tmp_path: Path) -> None:
    config = kubenet_config(
        IPv4Network("172.16.0.64/26"), IPv4Interface("172.16.0.65/26"), 9000, tmp_path
    )
    assert config["mtu"] == 9000
    assert config["ipam"]["subnet"] == "172.16.0.64/26"
    assert config["ipam"]["gateway"] == "172.16.0.65"  # the address only, no prefix
    assert config["ipam"]["dataDir"] == str(tmp_path)
    # What is written to the plugin's stdin must survive a JSON round trip unchanged.
    assert json.loads(json.dumps(config)) == config


def test_loopback_config() -> None:
    assert loopback_config() == {"cniVersion": "0.4.0", "name": "cni-loopback",
                                 "type": "loopback"}


# A result as the bridge plugin (0.4.0) prints it after ADD, written out by hand.
BRIDGE_RESULT = """\
{
    "cniVersion": "0.4.0",
    "interfaces": [
        {"name": "cbr0", "mac": "0a:58:0a:00:00:01"},
        {"name": "veth3f2a9c1b", "mac": "6e:1d:4b:8a:20:5f"},
        {"name": "eth0", "mac": "0a:58:0a:00:00:02", "sandbox": "/var/run/netns/pod-1"}
    ],
    "ips": [
        {"version": "4", "interface": 2, "address": "10.0.0.2/24", "gateway": "10.0.0.1"}
    ],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {}
}
"""


def test_parse_result_bridge_0_4_0() -> None:
    result = parse_result(BRIDGE_RESULT)
    assert isinstance(result, CniResult)
    assert result.address == IPv4Interface("10.0.0.2/24")
    assert result.address.ip == IPv4Address("10.0.0.2")
    assert result.address.network == IPv4Network("10.0.0.0/24")
    assert result.gateway == "10.0.0.1"
    assert result.raw == json.loads(BRIDGE_RESULT)
    assert result.raw["interfaces"][2]["sandbox"] == "/var/run/netns/pod-1"


def test_parse_result_skips_ipv6_and_takes_first_ipv4() -> None:
    text = json.dumps({
        "cniVersion": "0.4.0",
        "ips": [
            {"version": "6", "interface": 2, "address": "fd00::2/64", "gateway": "fd00::1"},
            {"version": "4", "interface": 2, "address": "10.0.1.3/24", "gateway": "10.0.1.1"},
            {"version": "4", "interface": 2, "address": "10.0.1.4/24", "gateway": "10.0.1.1"},
        ],
    })
    result = parse_result(text)
    assert result.address == IPv4Interface("10.0.1.3/24")
    assert result.gateway == "10.0.1.1"


def test_parse_result_without_version_or_gateway() -> None:
    # CNI 1.0 drops "version"; a result may also carry no gateway.
    result = parse_result('{"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.7/24"}]}')
    assert result.address == IPv4Interface("10.0.0.7/24")
    assert result.gateway is None


@pytest.mark.parametrize(
    "text",
    [
        '{"cniVersion": "0.4.0", "ips": []}',
        '{"cniVersion": "0.4.0", "interfaces": []}',
        json.dumps({"cniVersion": "0.4.0", "ips": [
            {"version": "6", "interface": 2, "address": "fd00::2/64", "gateway": "fd00::1"}]}),
    ],
    ids=["empty-ips", "no-ips", "ipv6-only"],
)
def test_parse_result_without_ipv4_is_an_error(text: str) -> None:
    with pytest.raises(TestbedError, match="CNI result has no IPv4 address"):
        parse_result(text)
