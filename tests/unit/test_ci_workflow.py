"""The GitHub workflow cannot run here: its syntax is checked instead (a YAML parse and the
keys the workflow schema requires), and that it runs exactly the README's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def load() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def test_the_workflow_has_what_the_schema_requires() -> None:
    doc = load()
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers, "a workflow needs `on`"
    assert isinstance(doc["jobs"], dict) and doc["jobs"]
    for name, job in doc["jobs"].items():
        assert isinstance(job.get("runs-on"), str), name
        assert isinstance(job.get("steps"), list) and job["steps"], name
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), step  # exactly one of them
            assert set(step) <= {"name", "run", "uses", "with", "if", "env", "id",
                                 "timeout-minutes", "continue-on-error", "shell",
                                 "working-directory"}, step


def test_the_workflow_runs_the_readmes_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    runs = [step["run"] for job in load()["jobs"].values() for step in job["steps"]
            if "run" in step]
    assert runs[0] == "sudo make test" and "sudo make test" in readme
    assert runs[1].startswith("sudo make run") and "sudo make run" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
