"""Reading one field of a topology file: type and range checks that raise a one-line
`SpecError` naming the field's path (``nodes[1].pods[0].name``). Pure."""

from __future__ import annotations

import difflib
import ipaddress
import re
from ipaddress import IPv4Network
from typing import Any

from testbed.errors import SpecError
from testbed.errors import quote as show

# Kubernetes object names are DNS labels; ours also become namespace and file names.
NAME_RE = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")  # used with fullmatch
# Ranges no emulated network may use: they mean something on every host.
SPECIAL_RANGES = {
    IPv4Network("0.0.0.0/8"): "'this network' (0.0.0.0/8)",
    IPv4Network("127.0.0.0/8"): "loopback (127.0.0.0/8)",
    IPv4Network("169.254.0.0/16"): "link-local (169.254.0.0/16)",
    IPv4Network("224.0.0.0/4"): "multicast (224.0.0.0/4)",
    IPv4Network("240.0.0.0/4"): "reserved (240.0.0.0/4, with the broadcast address)",
}

class Reader:
    """Reads one mapping of a topology file, raising SpecError with the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> SpecError:
        return SpecError(self.source, where, problem)

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where or "(top level)", f"must be a mapping, got {kind_of(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(where or "(top level)", f"key {show(key)} is not a string")
            if key not in allowed:
                hint = close_match(key, allowed)
                prefix = f"{where}." if where else ""
                raise self.fail(
                    f"{prefix}{show(key)[1:-1]}",
                    "unknown key" + (f" (did you mean '{hint}'?)" if hint else "")
                    + f"; allowed: {', '.join(sorted(allowed))}",
                )
        return value

    def require(self, mapping: dict[str, Any], where: str, *keys: str) -> None:
        """Each of `keys` must be in `mapping` (the first missing one is named)."""
        prefix = f"{where}." if where else ""
        for key in keys:
            if key not in mapping:
                raise self.fail(f"{prefix}{key}", "is required")

    def sequence(self, value: Any, where: str, what: str, most: int) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list{what}, got {kind_of(value)}")
        if len(value) > most:
            raise self.fail(where, f"{len(value)} entries; at most {most} are supported")
        return value

    def name(self, value: Any, where: str, max_len: int) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, got {kind_of(value)}")
        if len(value) > max_len:
            raise self.fail(where, f"{show(value)} is longer than {max_len} characters")
        if not NAME_RE.fullmatch(value):
            raise self.fail(
                where,
                f"{show(value)} must be lower-case letters, digits and '-', "
                "starting with a letter and not ending with '-'",
            )
        return value

    def network(self, value: Any, where: str, special_ok: bool = False) -> IPv4Network:
        if not isinstance(value, str):
            raise self.fail(where, "must be a CIDR string such as 10.0.0.0/16, got "
                            f"{kind_of(value)}")
        if len(value) > 43:  # the longest IPv6 CIDR
            raise self.fail(where, f"{show(value)} is not a valid network")
        try:
            net = ipaddress.ip_network(value)
        except ValueError as exc:
            raise self.fail(where, f"{show(value)} is not a valid network: {exc}") from None
        if not isinstance(net, IPv4Network):
            raise self.fail(where, f"'{value}' is not IPv4 (only IPv4 is supported)")
        if not special_ok:
            for special, what in SPECIAL_RANGES.items():
                if net.overlaps(special):
                    raise self.fail(where, f"{net} overlaps {what}: use a unicast range "
                                    "such as 10.0.0.0/8")
        return net

    def number(self, value: Any, where: str, low: float, high: float,
               low_open: bool = False) -> float:
        """An int or float in [low, high] (or (low, high] with `low_open`)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise self.fail(where, f"must be a number, got {kind_of(value)}")
        if value > high or value < low or (low_open and value == low):
            raise self.fail(where, f"{show(value)} is out of range "
                            f"{'(' if low_open else ''}{low:g}..{high:g}")
        return float(value)

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, got {kind_of(value)}")
        if not low <= value <= high:
            raise self.fail(where, f"{show(value)} is out of range {low}..{high}")
        return value


def kind_of(value: Any) -> str:
    """What a value is, for a message: its type and a bounded quotation."""
    return "nothing" if value is None else f"{type(value).__name__} {show(value)}"


def close_match(key: str, allowed: set[str]) -> str | None:
    if len(key) > 40:
        return None
    matches = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None



