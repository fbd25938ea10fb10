"""The `testbed` command: validate a topology, bring a cluster up with a CLI, clean up.

    testbed validate topologies/two-node.yaml
    sudo testbed up topologies/two-node.yaml                  # interactive
    sudo testbed up topologies/two-node.yaml --script cmds.txt
    sudo testbed up topologies/two-node.yaml -c pods -c 'pod-1 ping -c1 pod-3'
    sudo testbed clean
    testbed compare results/RUN_A results/RUN_B -o comparison.html
    testbed graph topologies/two-node.yaml -o cluster.svg

Exit status: 0 success, 1 a command or the bring-up failed, 2 bad input (topology file or
arguments), 130 interrupted; `compare --fail-on-difference`: 0 same, 1 differs, 3 cannot
tell, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from testbed.errors import SpecError, TestbedError, UsageError
from testbed.kernel import features, procs
from testbed.kernel.files import write_whole
from testbed.model.load import load_spec
from testbed.model.podnet import pod_network
from testbed.pods.wiring import CHOICES, DEFAULT_WIRING
from testbed.results.provenance import os_release


def cmd_validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.topology)
    network = pod_network(spec.pod_network)
    p = network.plan(spec)
    routers = ", ".join(f"{r.router_ip.ip} on {r.network} ({r.name})" for r in p.racks) \
        or f"{p.router_ip.ip} on {spec.underlay}"
    print(f"{args.topology}: valid. cluster {spec.name}: {len(spec.nodes)} nodes, "
          f"{len(spec.pods)} pods; cluster CIDR {spec.cluster_cidr}; pod network "
          f"{spec.pod_network}; router {routers}")
    for n in p.nodes:
        pods = [pod.name for pod in spec.nodes[n.index].pods]
        bridge = f"{network.bridge} {n.bridge_ip.ip}" if network.bridge else "no bridge"
        rack = f" ({n.rack})" if n.rack else ""
        print(f"  {n.name:<10} {str(n.underlay_ip.ip) + rack:<24} pod CIDR "
              f"{str(n.pod_cidr):<18} {bridge}  pods: {', '.join(pods) or '-'}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from testbed.cluster import Cluster  # Mininet and ipmininet: only to bring a cluster up

    spec = load_spec(args.topology)
    commands: list[str] | None = None
    if args.command:
        commands = list(args.command)
    elif args.script == "-":
        commands = sys.stdin.read().splitlines()
    elif args.script is not None:
        try:
            commands = Path(args.script).read_text().splitlines()
        except OSError as exc:
            print(f"error: --script {args.script}: {exc.strerror}", file=sys.stderr)
            return 2
    procs.install_interrupt_handlers()
    with Cluster(spec, progress=_say, mininet_log="info" if args.verbose else "output",
                 wiring=args.wiring) as cluster:
        from testbed.cli.shell import KubeCLI  # Mininet's CLI: only once a cluster is up

        if commands is None:
            _say("type 'help' for commands, 'pods' to list pods, 'exit' to tear down")
            cli = KubeCLI(cluster)
        else:
            # Mininet's CLI runs a script file given to it, then returns: an empty one,
            # then each line here, with no temporary file to leave behind.
            cli = KubeCLI(cluster, script=os.devnull)
            for line in commands:
                if cli.onecmd(line):
                    break
        failures = cli.failures
    if args.timings is not None:  # after teardown: its stages are in too
        write_whole(args.timings, json.dumps(
            {k: round(v, 4) for k, v in cluster.timings.items()}, indent=1) + "\n")
    if failures:
        print(f"error: {len(failures)} command(s) failed: " + "; ".join(failures),
              file=sys.stderr)
        return 1
    return 0


def cmd_doctor(_args: argparse.Namespace) -> int:
    """What this machine can and cannot emulate, and why: always exits 0 (it reports)."""
    from testbed.cluster import preflight  # the tool list lives beside the checks

    release = os_release()
    print(f"system: {release.get('PRETTY_NAME', 'unknown')} "
          f"({release.get('ID', '?')}-{release.get('VERSION_ID', '?')}); kernel "
          f"{platform.release()}; Python {platform.python_version()}")
    missing = preflight.missing_tools()
    print("tools: " + ("all present" if not missing else "missing " + ", ".join(
        f"{tool} (package {pkg})" for tool, pkg in missing)))
    found = features.probe()
    width = max(len(name) for name in found)
    for f in found.values():
        state = {True: "present", False: "absent", None: "unknown"}[f.present]
        why = f" ({f.detail})" if f.detail and f.present is not True else ""
        print(f"  {f.name:<{width}}  {state:<8} {f.used_for}{why}")
    if os.geteuid() != 0:
        print("(run as root to probe the kernel: each probe runs in a throwaway namespace)")
    return 0


def cmd_clean(_args: argparse.Namespace) -> int:
    from testbed.cluster import preflight
    from testbed.records import undo

    preflight.check_root()
    runs = undo.clean()
    if not runs:
        print("nothing to clean: no testbed run left anything behind")
        return 0
    print(f"removed the leftovers of {len(runs)} run(s): {', '.join(run for run, _ in runs)}")
    failed = [(run, errors) for run, errors in runs if errors]
    for run, errors in failed:  # one line a run; what is left stays recorded for a retry
        print(f"error: {run}: " + "; ".join(errors)
              + f" (kept in {undo.STATE_ROOT / run}: remove it by hand once you have checked)",
              file=sys.stderr)
    return 1 if failed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare runs (testbed.results.compare): Markdown on stdout, or a file (.md with
    its figure beside it, .html self-contained). No root needed. Exit status: 2 bad input;
    with --fail-on-difference 0 same, 1 differs, 3 cannot tell; without it 0."""
    from testbed.results import compare, compare_report
    from testbed.results.html import render_html
    from testbed.results.rundir import RunDir

    if len(args.runs) < 2:
        raise UsageError("compare needs two runs or more (the first is the reference)")
    margins = compare.Margins.parse(args.margin or [])
    runs = [compare.Run.load(RunDir.open(path), args.clean_rounds) for path in args.runs]
    comparisons = [compare.compare(runs[0], other, args.gate, margins, args.alpha)
                   for other in runs[1:]]
    png = compare_report.ratios_png(runs)
    out: Path | None = args.output
    figure = None
    if out is not None and png is not None:
        figure = out.with_suffix(".png").name
    text = compare_report.markdown(runs, figure, args.gate, margins, comparisons)
    if out is None:
        print(text)
    elif out.suffix == ".html":
        files = {figure: png} if figure else {}
        write_whole(out, render_html(text, lambda name: files.get(name), "Runs compared"))
    else:
        if figure and png is not None:
            write_whole(out.with_suffix(".png"), png)
        write_whole(out, text)
    if out is not None:
        print(f"comparison: {out}")
    answer = compare.outcome(comparisons)
    if not args.fail_on_difference:
        return 0
    if answer != compare.SAME:
        why = [w for c in comparisons for w in c.reasons()]
        print(f"{answer}: " + "; ".join(why), file=sys.stderr)
    return compare.EXIT[answer]


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw a topology file's cluster (testbed.results.graph), no root: SVG or PNG."""
    from testbed.results import graph

    spec = load_spec(args.topology)
    network = pod_network(spec.pod_network)
    p = network.plan(spec)
    fmt = args.output.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise UsageError(f"-o {args.output}: the drawing is .svg or .png")
    routes = [f"{r.dst} via {r.via}" for r in network.router_routes(p)]
    write_whole(args.output, graph.render(spec, p, network.bridge, spec.pod_network, fmt,
                                     graph.predicted_pod_ips(spec, p, network.bridge),
                                     routes))
    print(f"{args.output}: {len(spec.nodes)} nodes, {len(spec.pods)} pods")
    return 0


def _say(message: str) -> None:
    print(f"*** {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="testbed", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate", help="check a topology file and print its address plan")
    v.add_argument("topology", type=Path)
    v.set_defaults(func=cmd_validate)
    u = sub.add_parser("up", help="bring a cluster up and open a CLI (or run a script)")
    u.add_argument("topology", type=Path)
    u.add_argument("--script", help="file of CLI commands to run, then tear down ('-': stdin)")
    u.add_argument("-c", "--command", action="append",
                   help="a CLI command to run (repeatable); implies no interactive CLI")
    u.add_argument("-v", "--verbose", action="store_true", help="Mininet's info messages")
    u.add_argument("--timings", type=Path, metavar="FILE.json",
                   help="after teardown, write the seconds each bring-up and teardown "
                        "step and stage took (benchmarks/bringup.py reads it)")
    u.add_argument("--wiring", choices=list(CHOICES), default=DEFAULT_WIRING,
                   help="pod wiring: the real CNI plugins (default, the reference) or the "
                        "same kernel state over netlink, in-process (faster)")
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("doctor", help="say what this machine can and cannot emulate, and why")
    d.set_defaults(func=cmd_doctor)
    c = sub.add_parser("clean", help="remove what a crashed run left behind (and nothing else)")
    c.set_defaults(func=cmd_clean)
    m = sub.add_parser("compare", help="compare runs: verdicts, paired ratios and metrics "
                                       "(differs / same within a margin / cannot tell), "
                                       "environment differences; no root")
    m.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                   help="run directories; every later one is compared with the first")
    m.add_argument("-o", "--output", type=Path, default=None,
                   help="write the comparison here (.md with a .png beside it, or .html)")
    m.add_argument("--fail-on-difference", action="store_true",
                   help="exit 0 only if every gated metric is the same within its margin "
                        "and no verdict changed; 1 if something differs, 3 if these rounds "
                        "cannot tell (for CI against a stored reference run); 2 bad input")
    m.add_argument("--gate", choices=["all", "ratios"], default="all",
                   help="what decides the answer: every metric (default), or only the "
                        "verdicts and the paired ratios to node-node (what travels between "
                        "machines; absolute figures move 2-3x between machines of a kind)")
    m.add_argument("--margin", action="append", metavar="[WHAT=]FRACTION",
                   help="how large a change still counts as the same: 0.1 is +-10 %% for "
                        "paired ratios and absolute figures; ratios=, absolute= or "
                        "METRIC= for one kind or metric (repeatable; defaults: ratios and "
                        "absolute 0.15, retransmits 1.0, ttl 0.01)")
    m.add_argument("--alpha", type=float, default=0.05,
                   help="the chance of a false 'differs' over the gate, and of a false "
                        "'same' (default 0.05; a gate run on every commit: 0.01)")
    m.add_argument("--clean-rounds", action="store_true",
                   help="compare only the rounds whose every unit the fidelity monitor "
                        "judged ok (a round with a suspect unit is left out whole, and "
                        "the report lists it)")
    m.set_defaults(func=cmd_compare)
    g = sub.add_parser("graph", help="draw a topology's cluster as SVG or PNG (no root)")
    g.add_argument("topology", type=Path)
    g.add_argument("-o", "--output", type=Path, required=True,
                   help="the drawing: a .svg or .png file")
    g.set_defaults(func=cmd_graph)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit
        return code
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the cluster was torn down", file=sys.stderr)
        return 130
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`testbed validate ... | head -1`): nothing to say, and
        # nothing more to write (Python would try again at exit and complain)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what `yes | head` reports


if __name__ == "__main__":
    sys.exit(main())
