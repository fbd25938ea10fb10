"""What kube-proxy's process (testbed/proxy/kubeproxy.py) and its modes
(testbed/proxy/modes/) share: the state file it watches and the status it writes
(state.py), the iptables/nft commands (netfilter.py), the userspace proxier
(userspace.py). A folder of its own so that kubeproxy -> modes -> common runs one way."""
