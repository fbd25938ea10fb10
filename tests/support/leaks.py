"""What the leak checks look at: only what a testbed run could have made, by the names it
gives and the names its daemons use, never the whole machine.

Why: on a machine where other processes write /tmp (an editor, a package manager, another
user's job), a snapshot of every file there failed the suite on their files, and a real
leftover of the testbed's (an FRR crash-log directory) hid among them. So each kind of
object is matched by the testbed's own names (testbed.model.names) or by the exact names
its daemons use, and processes by the test session's mark in their environment (every
process the session starts inherits it, whichever parent it ends up with).

Pure name predicates here (unit-tested); the integration conftest reads the machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from testbed.model.names import is_own_name
from testbed.records.journal import FRR_DAEMONS

# Set in the test session's environment (tests/integration/conftest.py): the processes
# the session starts carry it, directly or through any number of parents.
SESSION_VAR = "KTESTBED_TEST_SESSION"

# Mininet's names for interfaces it makes in the machine's namespace before moving one end
# (`router-eth0`), and the ports of the testbed's own bridges (`ktb-ul1-eth1`).
_MININET_INTF = re.compile(r"[A-Za-z0-9_.-]+-eth[0-9]+")
# FRR's crash-log directory: <daemon>.<pid>, or <daemon>-<instance>.<pid>
_FRR_CRASHLOG = re.compile(r"(?P<daemon>[a-z0-9]+)(-[0-9]+)?\.(?P<pid>[0-9]+)")
# ipmininet's files in a router's working directory (/tmp unless told otherwise, as the
# testbed does): <daemon>_<node>.<suffix>, quagga_<node>.api, resolv_<node>.conf,
# hosts_<node>.
_IPMININET_DAEMONS = "|".join(sorted(FRR_DAEMONS | {"quagga", "sshd", "radvd", "exabgp",
                                                   "openr", "pimd", "iptables", "ip6tables"}))
_IPMININET_FILE = re.compile(rf"({_IPMININET_DAEMONS})_[A-Za-z0-9_.-]+\.[a-z]+"
                             r"|resolv_[A-Za-z0-9_.-]+\.conf|hosts_[A-Za-z0-9_.-]+")
# ipmininet's SSH key pair: tempfile.mktemp(dir='/tmp') and its .pub
_MKTEMP = re.compile(r"tmp[a-z0-9_]{8}")
# Mininet's own files in /tmp (controllers' and switches' logs and sockets)
_MININET_FILE = re.compile(r"(vconn|vlogs)[A-Za-z0-9_.-]*")


def testbed_link(name: str, group: int | None, link_group: int) -> bool:
    """A machine-namespace interface the testbed (or Mininet for it) could have made."""
    return is_own_name(name) or bool(_MININET_INTF.fullmatch(name)) or group == link_group


def frr_crashlog(name: str) -> bool:
    """An entry of /var/tmp/frr named as FRR names a daemon's crash-log directory."""
    m = _FRR_CRASHLOG.fullmatch(name)
    return m is not None and m.group("daemon") in FRR_DAEMONS


def ipmininet_or_mininet_file(name: str) -> bool:
    """A /tmp entry named as ipmininet's router files or Mininet's own files are."""
    return bool(_IPMININET_FILE.fullmatch(name) or _MININET_FILE.fullmatch(name))


def ssh_key_pairs(directory: Path) -> set[str]:
    """ipmininet's key pair in `directory`, made at import: `tmpXXXXXXXX` and its `.pub`,
    an SSH public key. A lone mktemp name is anybody's (Python's tempfile makes them)."""
    out = set()
    try:
        names = set(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".pub") or not _MKTEMP.fullmatch(name[:-4]):
            continue
        if name[:-4] not in names:
            continue
        try:
            with open(directory / name, "rb") as f:
                head = f.read(8)
        except OSError:
            continue
        if head.startswith(b"ssh-"):
            out |= {str(directory / name), str(directory / name[:-4])}
    return out


def carries_mark(environ: bytes, mark: bytes) -> bool:
    """Whether a process's /proc/PID/environ holds `mark` (`VAR=value`) as one entry."""
    return mark in environ.split(b"\0")
