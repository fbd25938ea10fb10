"""Cluster DNS, pure: the files kubelet writes for a pod and the DNS server's records.

kubelet (pkg/kubelet/network/dns, dnsPolicy ClusterFirst) gives each container a
resolv.conf naming the DNS service and the search list of the pod's namespace, with
`ndots:5`, and (pkg/kubelet/kubelet_pods.go) a managed /etc/hosts with the pod's own
name. The testbed keeps the host's own search domains out: they mean nothing inside
the emulation. The DNS server (dnsmasq, a real one from the distribution, standing in
for CoreDNS) answers `<service>.<namespace>.svc.<domain>` from a hosts file, and says
NXDOMAIN for any other name in the cluster domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path

from testbed.model.spec import DEFAULT_NAMESPACE, ServiceSpec

CLUSTER_DOMAIN = "cluster.local"
NDOTS = 5
HOSTS_HEADER = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


def resolv_conf(dns_ip: IPv4Address | str, namespace: str = DEFAULT_NAMESPACE,
                domain: str = CLUSTER_DOMAIN) -> str:
    """A ClusterFirst pod's /etc/resolv.conf."""
    search = f"{namespace}.svc.{domain} svc.{domain} {domain}"
    return f"search {search}\nnameserver {dns_ip}\noptions ndots:{NDOTS}\n"


def hosts_file(pod_ip: str, hostname: str) -> str:
    """A pod's kubelet-managed /etc/hosts."""
    return f"{HOSTS_HEADER}{pod_ip}\t{hostname}\n"


def service_fqdn(svc: ServiceSpec, domain: str = CLUSTER_DOMAIN) -> str:
    return f"{svc.name}.{svc.namespace}.svc.{domain}"


def records(services: Sequence[ServiceSpec], domain: str = CLUSTER_DOMAIN) -> str:
    """The DNS server's A records, one line per (resolved) service, as a hosts file."""
    return "".join(f"{svc.cluster_ip}\t{service_fqdn(svc, domain)}\n" for svc in services)


def dnsmasq_command(records_file: Path, domain: str = CLUSTER_DOMAIN) -> list[str]:
    """dnsmasq as the cluster's DNS server: in the foreground, no configuration file,
    no upstream servers, no /etc/hosts, only the services' records; authoritative for
    the cluster domain (NXDOMAIN for unknown names there), logging every query to
    stderr (the pod's log: evidence that a name was asked and answered)."""
    return ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", f"--addn-hosts={records_file}", f"--local=/{domain}/",
            "--user=root", "--pid-file=", "--log-facility=-", "--cache-size=0",
            "--log-queries"]
