"""The machine's kernel, called in-process: rtnetlink requests (netlink.py), namespace
system calls (ns.py), and the processes the testbed owns (procs.py). No Mininet here."""
