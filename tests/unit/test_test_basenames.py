"""Every test file has a name of its own across tests/unit and tests/integration: a report,
a `-k`, a `pytest test_fidelity.py` or a line in the README that names a file names one
file, and a unit test's name says what it tests apart from the emulation test of the same
subject (tests/unit/test_cpu_share_spec.py beside tests/integration/test_cpu_share.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("tests/unit", "tests/integration")


def duplicates(paths: Iterable[Path]) -> dict[str, list[str]]:
    """basename -> the files that share it, for basenames held by more than one file."""
    by_name: defaultdict[str, list[str]] = defaultdict(list)
    for path in paths:
        by_name[path.name].append(path.as_posix())
    return {name: sorted(files) for name, files in sorted(by_name.items()) if len(files) > 1}


def test_file_basenames_are_unique_across_unit_and_integration() -> None:
    files = [p.relative_to(ROOT) for folder in FOLDERS
             for p in sorted((ROOT / folder).rglob("test_*.py"))]
    assert files, "no test files found: has a folder moved?"
    assert duplicates(files) == {}


def test_the_check_finds_a_duplicate() -> None:
    found = duplicates([Path("tests/unit/test_links.py"), Path("tests/integration/test_links.py"),
                        Path("tests/unit/test_spec.py")])
    assert found == {"test_links.py": ["tests/integration/test_links.py",
                                       "tests/unit/test_links.py"]}
