"""The claims of the series' second part (Services), each on a cluster of its own built
from topologies/services.yaml (see experiments/framework/svc_common.py). Every verdict is
a pure function (`judge_*`) of the evidence kept in raw/<claim>/evidence.json, beside the
logs, rules, conntrack tables and captures it was read from.

    svc-range-separate   the ranges, read from the nodes' kernels and kube-proxy's rules
    svc-network-absent   every address and route of every node, pod and the router,
                         with a connection to the virtual IP as the positive control
    svc-dns-even-split   N connections by name; which server answered each (access logs);
                         an equivalence test of the split (each share within a margin)
    svc-rewrite-on-node  captures on both nodes' underlay interfaces and at the router
                         while the client connects; the client node's conntrack table
    svc-userspace-proxy  iptables mode, then userspace: the source each server saw, the
                         sockets kube-proxy listens on, the conntrack entries
    svc-kube-proxy-down  connections while kube-proxy is killed, in both modes
    svc-readiness        connections while a server's readiness check fails and recovers

One module a claim (its statement, the evidence its verdict reads, the verdict, the
experiment); what they share is common.py. registry.py lists them in the articles' order.
"""
