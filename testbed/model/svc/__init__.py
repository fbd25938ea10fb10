"""Services, pure: what the API server, the endpoints controller and kube-proxy compute.

    plan.py       cluster IPs and node ports allocated, the cluster DNS service, endpoints
                  from pod labels and readiness, and each service port as kube-proxy sees it
    iptables.py   kube-proxy's iptables mode: the iptables-restore payload of one node
    nftables.py   kube-proxy's nftables mode: the nft script of one node
    userspace.py  the legacy userspace mode: REDIRECT/DNAT portal rules to a local proxy
    config.py     what a node's kube-proxy is configured with, whatever its mode
    modes.py      the modes as plug-ins (name, tools), registered in PROXY_MODES; their
                  process side is testbed.proxy.modes
    dns.py        the files kubelet writes into a pod (resolv.conf, hosts) and the DNS
                  server's records

Nothing here touches the kernel; the node processes that apply it are testbed.proxy's.
"""
