#!/usr/bin/env bash
# Idempotent set-up for the testbed: Debian packages, FRR permissions, the Python
# environment. A second run checks and returns in about a second. Whatever happens, it
# leaves no policy-rc.d of its own behind.
#
# Why each step exists is said beside it; the README lists what each package is for.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: must run as root (it installs Debian packages): sudo make setup" >&2
    exit 1
fi

# Debian packages the code calls. bridge-utils: Mininet's LinuxBridge calls brctl but the
# mininet package does not depend on it. util-linux gives unshare/nsenter for pods.
packages=(
    mininet bridge-utils iproute2 iputils-ping iperf3 frr containernetworking-plugins
    catatonit iptables conntrack traceroute util-linux procps python3-venv python3-pip
    git make
)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
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
# Debian's mininet is used instead, so the directory only needs to exist.
mkdir -p /opt/mininet_dependencies

# The virtual environment is made from the *system* Python with system site packages,
# because Debian's mininet module lives in /usr/lib/python3/dist-packages.
venv="$here/.venv"
stamp="$venv/.testbed-setup-stamp"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/testbed" ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv from /usr/bin/python3"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
# ipmininet declares mininet as a git URL dependency: install it without its dependencies
# (Debian provides mininet) and give it the mako it needs.
"${pip[@]}" --no-deps 'ipmininet==1.0' 'mako>=1.1,<1.2'
"${pip[@]}" -e ".[dev]"
echo "$want" > "$stamp"
echo "setup: environment ready in $venv"
