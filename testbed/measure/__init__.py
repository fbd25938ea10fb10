"""Argument builders and output parsers for the measurement tools (ping, iperf3)."""
