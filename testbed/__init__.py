"""Kubernetes pod networking testbed."""
