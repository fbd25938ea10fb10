"""Claims about the other pod networks (issue 11), each on clusters of its own built from
topologies/flannel-host-gw.yaml, flannel-vxlan.yaml, kindnet.yaml and racks.yaml. Every
verdict is a pure function (`judge_*`) of the evidence kept in raw/<claim>/evidence.json.

    mode-host-gw-routes   flannel host-gw on one underlay: the router's kernel routes (no
                          pod route) and cross-node pings; on two racks, host-gw's pings
                          across the router and its agent's error, against flannel-vxlan's
                          and calico's (BGP, the router peering)
    mode-vxlan-mtu        flannel-vxlan: the pods' MTU against the underlay's, don't-fragment
                          pings at the MTU and one byte over, and a capture on the underlay
                          (outer node addresses, UDP 8472, VNI 1, inner pod addresses)
    mode-kindnet-no-bridge  kindnet: the nodes' links (no bridge, no bridge port) and routes
                          (one scope-host route per pod), cross-node pings
    mode-calico-bgp       Calico with BGP: the pod's neighbour entry for 169.254.1.1 (proxy
                          ARP), node-1's routes (the other block learnt over BGP, the local
                          blackhole), BIRD's sessions, the router's routes (every block,
                          learnt as a top-of-rack router), a host outside pinging a pod, the
                          convergence time, pings
    mode-calico-join      Calico with BGP, three nodes: node-3 leaves the mesh (its routes
                          withdrawn from every other node and the router, its pods out of
                          reach) and joins again (learnt over BGP, reachable both ways),
                          each change timed until every kernel agreed

One module a claim (its statement, the evidence its verdict reads, the verdict, the
experiment); what they share is common.py. registry.py lists them in the articles' order.
"""
