"""svc-dns-even-split, a claim of the series' second part (Services):

    a client reaches the service by name (cluster DNS) and port 80; with two server pods
    each gets about half the connections

The evidence, kept in raw/svc-dns-even-split/evidence.json, is a mapping; the verdict
(`judge_split`, pure) reads its keys

    served, client, resolved, vip, dns_answers, name

and `DnsEvenSplit.run` gathers them on a cluster of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from experiments.catalogue.services.common import SPLIT_ALPHA, SPLIT_MARGIN, ServicesClaim
from experiments.framework.base import Context, Result, Verdict, keep_evidence
from experiments.framework.svc_common import (
    CLIENT,
    SERVICE,
    keep_logs,
    run_client,
    served,
    services_cluster,
    summary,
    vip,
)
from experiments.framework.verdicts import ClaimResult, error, judge
from testbed.measure.services import EVEN, UNDECIDED, even_split


def judge_split(e: Mapping[str, Any]) -> ClaimResult:
    """Evenness is shown, not assumed: an equivalence test (each server's share within
    SPLIT_MARGIN of 1/k, its exact interval inside the band), `refuted` when a share lies
    wholly outside it, `error` when the connections are too few to tell either way."""
    counts = e["served"]
    n = e["client"]["connections"]
    if n < 1 or len(counts) < 2 or sum(counts.values()) < 1:
        return error(DnsEvenSplit.name, f"needs connections and two servers, had {n} connections, "
                     f"{sum(counts.values())} served, {len(counts)} server(s)")
    answer, shares = even_split(dict(counts), SPLIT_MARGIN, SPLIT_ALPHA)
    k = len(shares)
    band = f"{1 / k - SPLIT_MARGIN:.2f}..{1 / k + SPLIT_MARGIN:.2f}"
    level = 100 * (1 - 2 * SPLIT_ALPHA / k)
    split = ", ".join(f"{s.server} {s.count} ({s.share:.3f}, {level:g} % interval "
                      f"{s.low:.3f}..{s.high:.3f})" for s in shares)
    if answer == UNDECIDED:
        return error(DnsEvenSplit.name, f"too few connections to decide whether the split is even "
                     f"within +-{SPLIT_MARGIN:g} of 1/{k} (each share in {band}): {n} "
                     f"connections, served {split}; measure more (the full suite makes "
                     f"{DnsEvenSplit.connections})")
    return judge(
        DnsEvenSplit.name,
        {"the name resolved to the service's cluster IP": e["resolved"] == e["vip"],
         "the cluster DNS server answered the client": e["dns_answers"] > 0,
         "every connection succeeded": e["client"]["failed"] == 0,
         "every connection was served by a server pod": sum(counts.values()) == n,
         f"the split is even: every share's interval inside {band}": answer == EVEN},
        f"'{e['name']}' resolved to {e['resolved']} (the service {e['vip']}; the DNS pod "
        f"logged {e['dns_answers']} answer(s) to the client); "
        f"{e['client']['succeeded']}/{n} connections succeeded; served: {split}; "
        f"equivalence margin +-{SPLIT_MARGIN:g} of 1/{k}",
        {**counts, "connections": n, "margin": SPLIT_MARGIN,
         **{f"{s.server}_share_low": s.low for s in shares},
         **{f"{s.server}_share_high": s.high for s in shares}},
    )


class DnsEvenSplit(ServicesClaim):
    name = "svc-dns-even-split"
    statement = ("a client reaches the service by name (cluster DNS) and port 80; with two server "
                 "pods each gets about half the connections")
    connections = 1000
    quick_connections = 600

    def run(self, ctx: Context) -> Iterator[Result]:
        n = self.connections if ctx.params.repeat > 1 else self.quick_connections
        with services_cluster(ctx) as c:
            resolved, conns, raw = run_client(c, "split", n)
            logs = served(c, "split")
            dns_log = (c.records.subdir("containers") / "kube-dns_dnsmasq.log").read_text(
                errors="replace")
            client_ip = c.endpoint_ip(CLIENT)
            e = {"name": SERVICE, "vip": vip(c), "resolved": resolved,
                 "client": summary(conns),
                 "served": {s: len(seqs) for s, seqs in logs.items()},
                 "dns_answers": sum(1 for line in dns_log.splitlines()
                                    if f"{SERVICE}.default.svc.cluster.local" in line
                                    and " is " in line),
                 "dns_queries_from_client": sum(1 for line in dns_log.splitlines()
                                                if f"from {client_ip}" in line)}
            ctx.raw(f"{DnsEvenSplit.name}/client.jsonl", raw)
            keep_logs(ctx, DnsEvenSplit.name, c)
        keep_evidence(ctx, DnsEvenSplit.name, e)
        yield Verdict(judge_split(e))
