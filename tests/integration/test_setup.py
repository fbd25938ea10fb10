"""The set-up script cleans up after itself: the policy-rc.d that keeps package daemons
from starting during the install goes whatever happens (a failed apt-get included), and
one that was there before stays. The policy file is pointed at a temporary path here
(KTESTBED_POLICY_RC_D) and the package tools are fakes: nothing of the machine changes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import ROOT


def run_setup(tmp_path: Path, apt_exit: int) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """setup.sh with dpkg-query saying every package is missing and an apt-get that notes
    whether the policy is in place, then exits with `apt_exit`."""
    bin_dir, seen, policy = tmp_path / "bin", tmp_path / "seen", tmp_path / "policy-rc.d"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "apt-get").write_text(
        f"#!/bin/sh\n[ -x {policy} ] && echo \"$(cat {policy})\" >> {seen}\nexit {apt_exit}\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "KTESTBED_POLICY_RC_D": str(policy)}
    res = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], env=env,
                         capture_output=True, text=True, timeout=600)
    return res, seen, policy


def test_a_failed_install_leaves_no_policy_rc_d(tmp_path: Path) -> None:
    res, seen, policy = run_setup(tmp_path, apt_exit=100)
    assert res.returncode != 0
    assert "exit 101" in seen.read_text()  # in place while apt-get ran
    assert not policy.exists()


def test_a_policy_that_was_there_stays(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")  # the administrator's own
    policy.chmod(0o755)
    res, seen, _ = run_setup(tmp_path, apt_exit=100)
    assert res.returncode != 0
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
