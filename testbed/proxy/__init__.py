"""A node's kube-proxy process and what it reads and writes (see kubeproxy.py); its modes
as plug-ins (modes/) over the netfilter commands they share (netfilter.py)."""
