"""Argument builders and output parsers for the measurement tools (ping, iperf3,
traceroute): argument lists in, numbers out."""

from __future__ import annotations


def first_line(text: str) -> str:
    """The first non-blank line, shortened, so an error message stays on one line."""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 200 else line[:197] + "..."
    return ""
