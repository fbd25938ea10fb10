"""Mininet and ipmininet, adapted: the topology graph (topo.py), the node, link, switch
and router classes that configure the kernel over netlink (nodes.py), applying a pod
network's node set-up (nodesetup.py), and the one door to ipmininet (ipmn.py)."""
