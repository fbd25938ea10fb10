"""Pods: the pause process holding a pod's namespaces (pause.py), and the wirings that
connect it to its node behind one protocol (wiring.py): the real CNI plugins (cni.py) or
the same kernel state over netlink (fastwire.py)."""
