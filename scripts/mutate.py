#!/usr/bin/env python3
"""Mutation testing of the code that turns measurements into numbers and verdicts
(`make mutate`): the claims' verdicts, the parsers they rest on, the statistics, the run
comparison and the fidelity verdict.

mutmut (a dev dependency, configured in pyproject.toml's [tool.mutmut]) copies the project
into mutants/, changes one thing at a time in the files listed there (a `>=` into `>`, an
`all` into `any`, a check into `True`, a 0.95 into 1.95 ...) and runs the unit tests that
reach the changed function. A mutant the tests do not notice ("survived") is a change to a
verdict or a number that nothing pins.

Why a script around it: mutmut mutates whole files, and these files mix pure verdict code
with the code that drives an emulation (a claim's `run`, the helpers that exec in
namespaces), which unit tests cannot reach. Counting those would make the score say little.
`NOT_SCORED` below names, per file, the functions left out of the score and why; every other
function of a listed file counts, so a new verdict function is scored without anyone having
to remember to add it. The script then

  - starts from a fresh mutants/ (mutmut keeps a survivor's result even after a test that
    would kill it is added, so a cached run could understate the score),
  - runs `mutmut run` on the scored functions' mutants only (of the files given, or all),
    its output kept in mutants/mutmut.log,
  - prints, per file, killed / scored and the overall percentage,
  - writes every scored mutant that was not killed (survived, no test reaches it, ...) with
    its diff to mutants-survived.txt,
  - exits 1 when the overall score is under --min-score (90 % by default) or some scored
    mutant was not checked, so that `make mutate` can gate; it is not part of `make test`
    (it takes long: every mutant is a pytest run of the tests that reach its function).

A mutant whose tests hang past mutmut's time limit counts as killed: the change was noticed.

    .venv/bin/python scripts/mutate.py [FILE ...] [--min-score 90] [--jobs 2] [--no-run]
    make mutate ARGS="experiments/catalogue/services/readiness.py"  one file's functions only
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - mutmut itself needs 3.10+
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
SURVIVORS = ROOT / "mutants-survived.txt"
MUTANTS = ROOT / "mutants"

# Per mutated file: the functions (mutmut's names: `func`, `Class.method`; fnmatch
# patterns allowed) that do NOT count towards the score, each with the reason. Everything
# else in the file is verdict, parser or statistics code and counts.
EMULATION = "drives or reads the emulation (exec in namespaces): no unit test reaches it"
FIGURE = "draws a figure from the evidence; no verdict rests on it"
ARGV = "builds a command line, not evidence"
NOT_SCORED: dict[str, dict[str, str]] = {
    "experiments/framework/verdicts.py": {
        "declare": "registers a claim's class as it is defined; judges nothing",
    },
    "experiments/catalogue/services/common.py": {
        "_addresses": EMULATION, "_routes": EMULATION, "_timeline": FIGURE,
    },
    "experiments/catalogue/services/range_separate.py": {"*.run": EMULATION},
    "experiments/catalogue/services/network_absent.py": {"*.run": EMULATION},
    "experiments/catalogue/services/dns_even_split.py": {"*.run": EMULATION},
    "experiments/catalogue/services/rewrite_on_node.py": {"*.run": EMULATION},
    "experiments/catalogue/services/userspace_proxy.py": {
        "*.run": EMULATION, "_listening": EMULATION, "_phase": EMULATION,
    },
    "experiments/catalogue/services/kube_proxy_down.py": {
        "*.run": EMULATION, "_kill_during": EMULATION,
    },
    "experiments/catalogue/services/readiness.py": {"*.run": EMULATION, "_wait": EMULATION},
    "experiments/catalogue/outside/common.py": {
        "outside_cluster": EMULATION, "fetch": EMULATION, "served": EMULATION,
        "node_addresses": EMULATION, "pod_nodes": EMULATION,
        "_conns": "copies Connection objects into the evidence, inside `run`",
        "_path_rows": FIGURE,
    },
    "experiments/catalogue/outside/service_route.py": {"*.run": EMULATION},
    "experiments/catalogue/outside/node_ip_refused.py": {"*.run": EMULATION},
    "experiments/catalogue/outside/nodeport.py": {"*.run": EMULATION, "*.steps": EMULATION},
    "experiments/catalogue/outside/load_balancer.py": {"*.run": EMULATION, "*.steps": EMULATION},
    "experiments/catalogue/outside/lb_node_down.py": {
        "*.run": EMULATION, "*.steps": EMULATION, "_down_timeline": FIGURE,
    },
    "experiments/catalogue/outside/traffic_policy.py": {"*.run": EMULATION, "_health": EMULATION},
    "experiments/catalogue/outside/ingress.py": {"*.run": EMULATION},
    "experiments/catalogue/outside/host_port.py": {"*.run": EMULATION},
    "experiments/catalogue/modes/common.py": {
        "_cluster": EMULATION, "_racks": EMULATION, "_ping": EMULATION, "_pings": EMULATION,
        "_routes": EMULATION,
    },
    "experiments/catalogue/modes/host_gw_routes.py": {
        "*.run": EMULATION, "_attempt_routes": EMULATION,
    },
    "experiments/catalogue/modes/vxlan_mtu.py": {"*.run": EMULATION},
    "experiments/catalogue/modes/kindnet_no_bridge.py": {"*.run": EMULATION},
    "experiments/catalogue/modes/calico_bgp.py": {"*.run": EMULATION},
    "experiments/catalogue/modes/calico_join.py": {"*.run": EMULATION},
    "experiments/catalogue/article/shared_localhost.py": {"*.run": EMULATION},
    "experiments/catalogue/article/port_conflict.py": {"*.run": EMULATION},
    "experiments/catalogue/article/pause_holds_netns.py": {"*.run": EMULATION},
    "experiments/catalogue/article/docker0_collision.py": {
        "*.run": EMULATION, "*.steps": EMULATION, "probe_matrix": EMULATION,
    },
    "experiments/catalogue/article/gateway_routes.py": {
        "*.run": EMULATION, "vtysh": EMULATION, "_routes": EMULATION,
    },
    "experiments/catalogue/article/no_masquerade.py": {"*.run": EMULATION},
    "testbed/measure/ping.py": {"ping_argv": ARGV},
    "testbed/measure/iperf.py": {"client_argv": ARGV, "server_argv": ARGV,
                                 "_whole_seconds": ARGV},
    "testbed/measure/traceroute.py": {"traceroute_argv": ARGV},
    "testbed/measure/services.py": {},
    "testbed/measure/iproute.py": {},
    "experiments/framework/needs.py": {},
    "testbed/measure/fidelity.py": {},
    "testbed/measure/cpu_accounting.py": {
        "read_snapshot": "reads /proc of the running machine",
        "Monitor.*": "the sampling thread of a running emulation",
    },
    "testbed/results/stats.py": {},
    "testbed/results/compare.py": {
        "Run.load": "reads a run directory from disk",
    },
    "testbed/results/compare_report.py": {
        "ratios_png": FIGURE,
    },
    "testbed/results/compare_words.py": {},
    "testbed/results/fidelity.py": {
        "FidelityLog.*": "records the monitor's samples while a run goes on",
        "_load": "reads a run directory from disk",
        "units_frame": "reads a run directory from disk",
    },
}

KILLED = {1, 3, 36, 24, -24, 152, 255}  # failed tests, pytest's internal error, timeouts
STATUS = {0: "survived", 33: "no test reaches it", 5: "no test reaches it", 34: "skipped",
          None: "not checked", -11: "crashed", -9: "crashed"}


def function_of(mutant: str) -> str:
    """`experiments.catalogue.services.network_absent.x_judge_absent__mutmut_3` ->
    `judge_absent`;
    `...xǁRunǁload__mutmut_1` -> `Run.load`."""
    mangled = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    if mangled.startswith("x_"):
        return mangled[2:]
    _, cls, func = mangled.split("\u01c1")
    return f"{cls}.{func}"


def scored(path: str, func: str) -> bool:
    return not any(fnmatch.fnmatchcase(func, p) for p in NOT_SCORED[path])


def check_config() -> None:
    """The files mutmut mutates are exactly those this table knows."""
    if tomllib is None:
        return
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    mutated, known = set(cfg["only_mutate"]), set(NOT_SCORED)
    if mutated != known:
        sys.exit(f"mutate: pyproject.toml's [tool.mutmut] only_mutate and NOT_SCORED in "
                 f"{Path(__file__).name} differ: only in pyproject {sorted(mutated - known)}, "
                 f"only here {sorted(known - mutated)}")


def scored_functions(path: str) -> list[str]:
    """The functions of a file that count (top-level functions and methods, as mutmut
    mutates them: a nested function is part of its parent), read from its source."""
    tree = ast.parse((ROOT / path).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            names += [f"{node.name}.{f.name}" for f in node.body
                      if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [n for n in names if scored(path, n)]


def mutant_globs(paths: list[str]) -> list[str]:
    """mutmut names of the scored functions' mutants:
    `experiments.framework.verdicts.x_judge__mutmut_*`,
    `testbed.results.compare.xǁRunǁload__mutmut_*`."""
    globs = []
    for path in paths:
        module = path[:-len(".py")].replace("/", ".")
        for func in scored_functions(path):
            cls, _, name = func.rpartition(".")
            mangled = f"x\u01c1{cls}\u01c1{name}" if cls else f"x_{name}"
            globs.append(f"{module}.{mangled}__mutmut_*")
    return globs


def run_mutmut(jobs: int, names: list[str]) -> int:
    if MUTANTS.exists():
        shutil.rmtree(MUTANTS)
    MUTANTS.mkdir()
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        sys.exit("mutate: mutmut is not installed in this environment (a dev dependency for "
                 "Python 3.10 and later: make setup)")
    log = MUTANTS / "mutmut.log"
    print(f"mutate: mutmut run (log: {log.relative_to(ROOT)}) ...", flush=True)
    with log.open("w") as out:
        # mutmut draws a spinner; its output goes to the log, not the terminal
        proc = subprocess.Popen([str(mutmut), "run", "--max-children", str(jobs), *names],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            return proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: take mutmut (and its workers) down too
                proc.terminate()
                proc.wait()


def results() -> dict[str, dict[str, object]]:
    """Every mutant's mutmut exit code, per file, from mutmut's .meta files."""
    out = {}
    for path in NOT_SCORED:
        meta = MUTANTS / (path + ".meta")
        out[path] = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    return out


def diff(mutant: str, path: str) -> str:
    """The mutant's change, as `mutmut show` prints it."""
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        return str(get_diff_for_mutant(mutant, path=path))
    except Exception:  # another mutmut version: ask its command line
        res = subprocess.run([str(Path(sys.executable).with_name("mutmut")), "show", mutant],
                             cwd=ROOT, capture_output=True, text=True)
        return res.stdout or res.stderr
    finally:
        os.chdir(cwd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", metavar="FILE",
                    help="test only the mutants of these files (of pyproject.toml's "
                         "only_mutate), e.g. experiments/catalogue/services/readiness.py; "
                         "default: all")
    ap.add_argument("--min-score", type=float, default=90.0,
                    help="exit 1 under this percentage of scored mutants killed (default 90)")
    ap.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    ap.add_argument("--no-run", action="store_true",
                    help="score the results mutants/ holds already, without running mutmut")
    args = ap.parse_args()
    check_config()
    unknown = sorted(set(args.files) - set(NOT_SCORED))
    if unknown:
        ap.error(f"not mutated (see pyproject.toml's [tool.mutmut]): {', '.join(unknown)}")
    files = args.files or list(NOT_SCORED)
    start = time.monotonic()
    if not args.no_run:
        # Only the scored functions' mutants are tested: the others (a claim's `run`...)
        # would cost time and count for nothing.
        rc = run_mutmut(args.jobs, mutant_globs(files))
        if rc != 0:
            tail = (MUTANTS / "mutmut.log").read_text(errors="replace")[-3000:]
            print(tail.replace("\r", "\n"))
            print(f"mutate: mutmut failed (exit {rc}); see mutants/mutmut.log", file=sys.stderr)
            return 2

    rows: list[tuple[str, int, int, int]] = []  # (path, killed, scored, not checked)
    missed: list[tuple[str, str, str]] = []  # (path, mutant, status)
    unreached_functions: dict[str, set] = {}
    for path, codes in results().items():
        if path not in files:
            continue
        killed = total = unchecked = 0
        for mutant, code in sorted(codes.items()):
            func = function_of(mutant)
            if not scored(path, func):
                continue
            total += 1
            if code is None:
                unchecked += 1
            elif code in KILLED:
                killed += 1
            else:
                missed.append((path, mutant, STATUS.get(code, f"exit {code}")))
                if code in (33, 5):
                    unreached_functions.setdefault(path, set()).add(func)
        rows.append((path, killed, total, unchecked))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'file':<{width}}  killed / scored")
    for path, killed, total, unchecked in rows:
        pct = f"{100 * killed / (total - unchecked):5.1f} %" if total > unchecked else "  -"
        note = f"  ({unchecked} not checked)" if unchecked else ""
        print(f"{path:<{width}}  {killed:4d} / {total - unchecked:4d}  {pct}{note}")
    all_killed = sum(r[1] for r in rows)
    all_total = sum(r[2] - r[3] for r in rows)
    all_unchecked = sum(r[3] for r in rows)
    score = 100 * all_killed / all_total if all_total else 0.0
    print(f"{'overall':<{width}}  {all_killed:4d} / {all_total:4d}  {score:5.1f} %")
    if all_unchecked:
        print(f"mutate: {all_unchecked} scored mutants were not checked (an interrupted or "
              "partial run): the score covers the others only", file=sys.stderr)

    with SURVIVORS.open("w") as f:
        f.write(f"# {len(missed)} scored mutants not killed by the unit tests "
                f"(scripts/mutate.py; score {score:.1f} %)\n")
        for path, funcs in sorted(unreached_functions.items()):
            f.write(f"# no unit test reaches {path}: {', '.join(sorted(funcs))}\n")
        for path, mutant, status in missed:
            f.write(f"\n## {mutant}: {status} ({path})\n{diff(mutant, path).rstrip()}\n")
    print(f"\nmutate: {len(missed)} scored mutants not killed, with their diffs, in "
          f"{SURVIVORS.relative_to(ROOT)}; {time.monotonic() - start:.0f} s")
    if score < args.min_score or all_unchecked:
        print(f"mutate: score {score:.1f} % (target {args.min_score:g} %)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
