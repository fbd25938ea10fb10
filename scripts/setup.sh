#!/usr/bin/env bash
# Idempotent set-up for the testbed: system packages, FRR permissions, the Python
# environment. A second run checks and returns in about a second. Whatever happens, it
# leaves no policy-rc.d of its own behind.
#
#   sudo scripts/setup.sh           set up (what `make` runs first)
#   scripts/setup.sh --plan         say what would be installed here, change nothing (no root)
#
# Supported: Debian 12, Ubuntu 20.04, 22.04 and 24.04 (read from /etc/os-release). A Mininet
# the system Python can already import (installed from source, as on the Mininet VM image)
# is used as it is and never replaced. Why each step exists is said beside it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

os_release="${KTESTBED_OS_RELEASE:-/etc/os-release}"   # tests point these elsewhere
system_python="${KTESTBED_SYSTEM_PYTHON:-/usr/bin/python3}"
cni_dir="${KTESTBED_CNI_DIR:-/usr/lib/cni}"

# --- the plan: which packages, decided from the release and what is there already -------

release_of() {  # "<ID>-<VERSION_ID>" of os-release, e.g. debian-12, ubuntu-22.04
    if [ ! -r "$os_release" ]; then
        echo "unknown"
        return
    fi
    ( . "$os_release"; echo "${ID:-unknown}-${VERSION_ID:-unknown}" )
}

# Packages every supported release has under these names. bridge-utils: Mininet's
# LinuxBridge calls brctl but the mininet package does not depend on it; util-linux gives
# unshare/nsenter for pods. For Services: nftables (kube-proxy's nftables mode), dnsmasq-base
# (cluster DNS, no daemon started), tcpdump (captures as evidence), curl (clients). For
# traffic from outside: haproxy (the cloud load balancer), nginx-light (the ingress
# controller); for Calico with BGP: bird2 (Calico's BGP daemon); for nodes' CPU shares:
# cgroup-tools (cgexec, as Mininet's CPULimitedHost uses it). The testbed runs its own
# instances in namespaces, never their services.
common=(bridge-utils iproute2 iputils-ping iperf3 frr iptables conntrack traceroute
        nftables dnsmasq-base tcpdump curl haproxy nginx-light bird2 cgroup-tools
        util-linux procps python3-venv python3-pip git make)
packages=()
notes=()
refusal=""

plan() {
    local release
    release="$(release_of)"
    packages=("${common[@]}")
    case "$release" in
        debian-12|ubuntu-22.04|ubuntu-24.04)
            packages+=(containernetworking-plugins catatonit) ;;
        ubuntu-20.04)
            # Neither is packaged for 20.04 (both came with 22.04). The release of the CNI
            # plugins the testbed uses cannot be fetched offline: the user puts them there.
            if [ ! -x "$cni_dir/bridge" ] || [ ! -x "$cni_dir/host-local" ] \
                    || [ ! -x "$cni_dir/loopback" ]; then
                refusal="Ubuntu 20.04 has no containernetworking-plugins package: unpack the CNI plugins v1.1.1 release (cni-plugins-linux-amd64-v1.1.1.tgz from github.com/containernetworking/plugins) into $cni_dir, then run this again"
            elif ! command -v catatonit >/dev/null 2>&1; then
                refusal="Ubuntu 20.04 has no catatonit package: install catatonit (the 0.1.7 .deb of Ubuntu 22.04 installs on 20.04, or build github.com/openSUSE/catatonit) so that it is on PATH, then run this again"
            else
                notes+=("CNI plugins from $cni_dir and catatonit from $(command -v catatonit), installed by hand (Ubuntu 20.04 packages neither)")
            fi ;;
        *)
            refusal="unsupported system '$release' (from $os_release): supported are debian-12, ubuntu-20.04, ubuntu-22.04, ubuntu-24.04" ;;
    esac
    if installed mininet; then
        packages+=(mininet)  # the distribution's, there already
    elif "$system_python" -c 'import mininet.net' >/dev/null 2>&1 \
            && command -v mnexec >/dev/null 2>&1; then
        notes+=("Mininet already importable by $system_python (not the package): used as it is, not replaced")
    else
        packages+=(mininet)
    fi
}

installed() {  # whether dpkg reports package $1 as installed
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing_packages() {  # the planned packages dpkg does not report as installed
    local p
    for p in "${packages[@]}"; do
        installed "$p" || echo "$p"
    done
}

plan
if [ "${1:-}" = "--plan" ]; then
    echo "system: $(release_of)"
    if [ -n "$refusal" ]; then
        echo "refused: $refusal"
        exit 1
    fi
    echo "packages: ${packages[*]}"
    echo "to install: $(missing_packages | tr '\n' ' ')"
    for n in "${notes[@]+"${notes[@]}"}"; do echo "note: $n"; done
    exit 0
fi

if [ -n "$refusal" ]; then
    echo "setup: $refusal" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup: must run as root (it installs system packages): sudo make setup" >&2
    exit 1
fi

# --- the packages -----------------------------------------------------------------------

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
    for n in "${notes[@]+"${notes[@]}"}"; do echo "setup: $n"; done
    echo "setup: installing packages: ${missing[*]}"
    # Never let a package start its daemon (frr, iperf3) in the machine's own namespace:
    # policy-rc.d exit 101 forbids service starts during the install.
    # It is removed on any exit (a failed apt-get included): left behind, it would block
    # every service start on the machine. One that was there before stays as it was.
    policy="${KTESTBED_POLICY_RC_D:-/usr/sbin/policy-rc.d}"  # a test points it elsewhere
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if trap -p EXIT | grep -q policy; then  # ours
        rm -f "$policy"
        trap - EXIT
    fi
fi

# FRR daemons refuse to start unless the user running them is in frr and frrvty.
for g in frr frrvty; do
    if ! id -nG root | tr ' ' '\n' | grep -qx "$g"; then
        usermod -a -G "$g" root
    fi
done

# ipmininet 1.0's setup.py clones mininet from the internet unless this directory exists;
# the system's mininet is used instead, so the directory only needs to exist.
mkdir -p /opt/mininet_dependencies

# The virtual environment is made from the *system* Python with system site packages,
# because the system's mininet module lives there (a package's or a source install's).
venv="$here/.venv"
stamp="$venv/.testbed-setup-stamp"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/testbed" ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv from $system_python"
    "$system_python" -m venv --system-site-packages "$venv"
fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
# ipmininet declares mininet as a git URL dependency: install it without its dependencies
# (the system provides mininet) and give it the mako it needs.
"${pip[@]}" --no-deps 'ipmininet==1.0' 'mako>=1.1,<1.2'
"${pip[@]}" -e ".[dev]"
echo "$want" > "$stamp"
echo "setup: environment ready in $venv"
