"""The Services benchmark's pure parts: its topology at the largest size, and the report's
ratios between the modes."""

from __future__ import annotations

from benchmarks import services as bench
from testbed.model.svc import plan


def test_spec_at_5000_services_fits_and_one_service_is_the_changing_one() -> None:
    spec = bench.make_spec(5000, "nftables")
    assert len(spec.services) == 5000 and spec.kube_proxy_mode == "nftables"
    resolved = plan.resolve(spec)
    assert len({s.cluster_ip for s in resolved}) == 5001  # with kube-dns, all distinct
    assert dict(spec.services[0].selector) == {"app": "changing"}
    assert all(dict(s.selector) == {"app": "web"} for s in spec.services[1:])


def test_report_compares_the_modes_at_each_size() -> None:
    import pandas as pd

    rows = []
    for mode, full, change in (("iptables", 2.0, 0.4), ("nftables", 1.0, 0.1)):
        for metric, value in (("first_sync_s", full), ("change_sync_s", change),
                              ("noop_sync_s", 0.01), ("up_s", 1.0), ("rules", 10)):
            rows.append({"mode": mode, "services": 100, "repeat": 0, "metric": metric,
                         "value": value})
    text = bench.report(pd.DataFrame(rows), {"cpus": 2, "kernel": "k", "started_utc": "t",
                                             "git_commit": "abcdef0123456"})
    assert "nftables `first_sync_s` as a ratio to iptables' at the same size: " \
           "100 services 0.5" in text
    assert "100 services 0.25" in text
