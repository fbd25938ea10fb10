"""A node's kube-proxy process and what it reads and writes (see kubeproxy.py)."""
