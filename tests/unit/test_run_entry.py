"""experiments/run.py typed with the system Python before set-up: one line, exit 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_before_setup_it_says_what_to_run(tmp_path: Path) -> None:
    (tmp_path / "experiments").mkdir()
    shutil.copy(ROOT / "experiments" / "run.py", tmp_path / "experiments" / "run.py")
    res = subprocess.run([sys.executable, str(tmp_path / "experiments" / "run.py"), "--quick"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1
    assert "sudo make setup" in res.stderr and "Traceback" not in res.stderr


def test_help_works_through_the_project_environment() -> None:
    res = subprocess.run(["/usr/bin/python3", str(ROOT / "experiments" / "run.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for option in ("--topology", "--out", "--repeat", "--quick", "--experiment"):
        assert option in res.stdout


def test_experiment_takes_a_list_in_the_suite_order() -> None:
    from experiments import run
    from experiments.registry import REGISTRY

    args = run.parse_args(["--experiment", "gateway-routes,shared-localhost"])
    assert args.experiment == ["shared-localhost", "gateway-routes"]  # the registry's order
    assert run.parse_args(["--experiment", "all"]).experiment == list(REGISTRY)
    assert run.parse_args([]).experiment is None
