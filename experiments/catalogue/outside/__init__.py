"""The claims of the series' third part (traffic from outside the cluster), each on a
cluster of its own built from topologies/outside.yaml: three nodes (node-3 without a web
pod), `web-cluster` and `web-local` LoadBalancer services (externalTrafficPolicy Cluster
and Local), an ingress `shop` in front of `cart` and `web-cluster`, a hostPort pod on
node-3, and `internet-client` behind the router. Every verdict is a pure function
(`judge_*`) of the evidence kept in raw/<claim>/evidence.json, beside the logs, captures,
rules and load-balancer samples it was read from.

    out-service-route     the service range routed to node-1 at the router: reachable from
                          outside, every connection through node-1, gone when node-1 fails
    out-node-ip-refused   each node's address on the service port, with its node port as
                          the positive control
    out-nodeport          every node's node port; which pod served each entry node, and the
                          extra hop (capture on the entry node's uplink)
    out-load-balancer     connections through the load balancer: per-node counts from
                          HAProxy, the health-check state, the node port in the captures
    out-lb-node-down      a node taken off the network under load: when the load balancer
                          stopped sending to it, and the connections lost in between
    out-traffic-policy    Cluster against Local: the source each server logged, nodes
                          without a local pod, the health-check node port's answers
    out-ingress           host names and paths through the ingress controller
    out-host-port         the hostPort on every node: only the pod's node answers, no proxy

One module a claim (its statement, the evidence its verdict reads, the verdict, the
experiment); what they share is common.py. registry.py lists them in the articles' order.
"""
