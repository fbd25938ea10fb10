"""Bad input through the real entry points: one line naming file and field, exit 2, no
traceback, nothing created. Root is not needed: input is refused before any of that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments import run as run_py
from experiments import session
from testbed.cli import main as cli
from testbed.cluster import preflight
from testbed.errors import MissingDependencyError
from testbed.kernel import features
from testbed.results.rundir import FORMAT_VERSION

from .test_spec import INVALID

ROOT = Path(__file__).resolve().parents[2]


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# every case but one, which YAML cannot even write (an integer of 5000 digits; the file
# form is test_spec's huge-integer case)
THROUGH_A_FILE = [c for c in INVALID if c[0] != "prefix-huge-number"]


@pytest.mark.parametrize(("data", "field"), [(c[1], c[2]) for c in THROUGH_A_FILE],
                         ids=[c[0] for c in THROUGH_A_FILE])
def test_testbed_validate_refuses_each_malformed_file(tmp_path: Path, capsys, data: Any,
                                                      field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["validate", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {path}: {field}: ")


@pytest.mark.parametrize(("text", "field"), [
    ("name: x\nnodes: [\n", "line 3"),         # YAML syntax error
    ("", "(top level)"),                       # empty file
    ("- just\n- a list\n", "(top level)"),     # not a mapping
])
def test_unreadable_documents(tmp_path: Path, capsys, text: str, field: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert cli.main(["validate", str(path)]) == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: {path}: {field}: ")


def test_missing_file(tmp_path: Path, capsys) -> None:
    assert cli.main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"error: {tmp_path / 'nope.yaml'}: (file): no such file")


def test_run_py_refuses_a_malformed_topology_before_creating_anything(tmp_path: Path,
                                                                      capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncluster_cidr: 10.0.0.0/14\nnodes:\n  - name: Node_1\n")
    assert run_py.main(["--topology", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "nodes[0].name" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [
    [], ["up"], ["frobnicate"], ["up", "x.yaml", "--bogus"],
])
def test_testbed_bad_arguments_are_argparse_errors(capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage: testbed" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--duration", "1.5"], "invalid int value"),
    (["--experiment", "nope"], "name each once, among all"),
    (["--experiment", "throughput,nope"], "name each once"),
    (["--experiment", "throughput,throughput"], "name each once"),
    (["--resume", "r", "--topology", "t.yaml"], "drop --topology"),
    (["--resume", "r", "--quick"], "drop --quick"),
    (["--modes", "calico,bogus"], "name each once, among kubenet"),
    (["--modes", "calico,calico"], "name each once"),
    (["--modes", "docker-default"], "name each once"),  # its cross-node traffic never arrives
    (["--modes", ","], "name each once"),
    (["--resume", "r", "--modes", "calico"], "drop --modes"),
    (["--target-ci", "0"], "relative width in (0, 2]"),
    (["--target-ci", "0.1", "--budget", "0"], "--budget must be"),
    (["--budget", "60"], "--budget goes with --target-ci"),
])
def test_run_py_bad_arguments(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        run_py.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: experiments/run.py" in err and message in err


def test_resume_of_something_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert run_py.main(["--resume", str(tmp_path)]) == 2
    assert "no metadata.json there" in one_error_line(capsys.readouterr().err)


def test_missing_tool_names_the_debian_package(monkeypatch) -> None:
    real_which = preflight.shutil.which
    monkeypatch.setattr(preflight.shutil, "which",
                        lambda tool: None if tool in ("catatonit", "zebra") else real_which(tool))
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    with pytest.raises(MissingDependencyError) as info:
        preflight.check_all()
    message = str(info.value)
    assert "catatonit" in message and "zebra" in message
    assert "install the Debian package(s) catatonit frr" in message


TESTBED = [sys.executable, "-m", "testbed.cli.main"]


def test_validate_of_a_fifo_or_a_device_is_one_line_and_does_not_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "t.yaml"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        res = subprocess.run([*TESTBED, "validate", str(path)], capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 2
        assert one_error_line(res.stderr).endswith("is not a regular file (a FIFO, socket or "
                                                   "device)")


def test_validate_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`testbed validate ... | head -1`: the reader is gone before we write."""
    read, write = os.pipe()
    os.close(read)
    try:
        res = subprocess.run([*TESTBED, "validate", str(ROOT / "topologies" / "four-node.yaml")],
                             stdout=write, stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(write)
    assert res.stderr == "" and res.returncode == 141  # 128 + SIGPIPE, as `yes | head` gives


def test_run_py_out_that_is_a_file_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(session.preflight, "check_all", lambda: None)  # no root needed here
    a_file = tmp_path / "out"
    a_file.write_text("")
    assert run_py.main(["--out", str(a_file), "--quick"]) == 2
    assert "exists and is not a directory" in one_error_line(capsys.readouterr().err)


RUN_META = {"format_version": FORMAT_VERSION, "status": "interrupted",
            "experiments": ["reachability"], "parameters": {"repeat": 1},
            "topology": {"name": "t", "cluster_cidr": "10.0.0.0/14",
                         "nodes": [{"name": "n", "pods": 2}]}}


@pytest.mark.parametrize(("meta", "fragment"), [
    ("[1, 2]", "not a run's metadata"),
    (json.dumps({"format_version": FORMAT_VERSION}), "'experiments' is not a list of names"),
    (json.dumps({**RUN_META, "experiments": "reachability"}), "'experiments' is not a list"),
    (json.dumps({**RUN_META, "experiments": ["nope"]}), "unknown experiment(s) ['nope']"),
    (json.dumps({**RUN_META, "parameters": {"repeat": -1}}), "'parameters' are not"),
    (json.dumps({**RUN_META, "parameters": {"bogus": 1}}), "'parameters' are not"),
    (json.dumps({**RUN_META, "parameters": [1]}), "'parameters' are not"),
    (json.dumps({**RUN_META, "wiring": "telepathy"}), "unknown wiring"),
    (json.dumps({**RUN_META, "parameters": {"modes": ["nope"]}}), "modes must name"),
    (json.dumps({**RUN_META, "parameters": {"modes": "calico"}}), "modes must name"),
    (json.dumps({**RUN_META, "parameters": {"target_ci": -1}}), "target_ci must be"),
    (json.dumps({**RUN_META, "topology": {"name": "T"}}), "(topology): cluster_cidr:"),
    (json.dumps({**RUN_META, "owner": "me", "status": "running"}), "measurements.csv"),
    ("\xff\xfe", "not valid JSON"),
], ids=["a-list", "no-experiments", "experiments-a-string", "unknown-experiment",
        "negative-repeat", "unknown-parameter", "parameters-a-list", "unknown-wiring",
        "unknown-mode", "modes-a-string", "negative-target",
        "bad-topology", "bad-csv", "not-utf8"])
def test_resume_of_malformed_metadata_is_one_line(tmp_path: Path, capsys, meta: str,
                                                  fragment: str) -> None:
    (tmp_path / "metadata.json").write_bytes(meta.encode(errors="surrogateescape")
                                             if not meta.startswith("\xff") else b"\xff\xfe")
    if fragment == "measurements.csv":
        (tmp_path / "measurements.csv").write_text("not,the,columns\n1,2,3\n")
    assert run_py.main(["--resume", str(tmp_path)]) == 2
    assert fragment in one_error_line(capsys.readouterr().err)


def test_doctor_reports_and_exits_0(monkeypatch, capsys) -> None:
    monkeypatch.setattr(features, "probe", lambda: {
        "veth": features.Feature("veth", True, "pods"),
        "openvswitch": features.Feature("openvswitch", False, "the OVS underlay",
                                        "no openvswitch kernel module loaded")})
    monkeypatch.setattr("testbed.cluster.preflight.missing_tools", lambda: [])
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "tools: all present" in out
    assert "veth         present  pods" in out
    assert "openvswitch  absent   the OVS underlay (no openvswitch kernel module loaded)" in out


def test_feature_probes_without_root_say_unknown(monkeypatch) -> None:
    monkeypatch.setattr(features.os, "geteuid", lambda: 1000)
    found = features.probe()
    assert found["vxlan"].present is None and found["vxlan"].detail == "probing needs root"


def test_run_py_modes_become_the_comparisons_parameter() -> None:
    params = session.make_params(run_py.parse_args(["--modes", "calico, kubenet"]))
    assert params.modes == ("calico", "kubenet")
    assert params.to_dict()["modes"] == ["calico", "kubenet"]  # JSON, and back on resume
    assert session.Params(**params.to_dict()).modes == ["calico", "kubenet"]
    assert session.make_params(run_py.parse_args([])).modes == ()


def test_iperf3_is_pinned_unless_told_not_to(monkeypatch) -> None:
    import os

    params = session.make_params(run_py.parse_args([]))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3, 1, 7})
    assert params.pin and params.pin_cpus() == (1, 3)  # the first two CPUs it may use
    assert session.pinning(params) == {"pinned": True, "client_cpu": 1, "server_cpu": 3}
    unpinned = session.make_params(run_py.parse_args(["--no-pin"]))
    assert unpinned.pin_cpus() is None and session.pinning(unpinned)["why"] == "--no-pin"
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert params.pin_cpus() is None and session.pinning(params)["why"] == "one CPU"


def test_a_run_from_before_pinning_resumes_unpinned(tmp_path: Path) -> None:
    meta = {**RUN_META, "parameters": {"repeat": 1}}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    plan = session.plan_run(run_py.parse_args(["--resume", str(tmp_path)]))
    assert plan.params.pin is False and plan.params.repeat == 1
