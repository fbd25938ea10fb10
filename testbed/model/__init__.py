"""The pure model: what a topology file asks for and everything it implies, computed
without touching the kernel (so all of it is tested without root).

    spec.py        ClusterSpec & co. (types only)
    load/          topology files -> validated spec (a package of its own: above the
                   types, the pod networks and Services it builds from)
    names.py       machine-wide names (prefix, router, underlay bridge, netns)
    cidrs.py       CIDR arithmetic
    addressing.py  the address plan: underlay, router, pod CIDRs, gateways
    paths.py       path classes and the reply TTL each implies
    podnet/        pod networks (kubenet, docker-default) behind one interface
"""
