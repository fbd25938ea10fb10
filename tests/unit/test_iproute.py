"""`ip -j` reads: a failed read is an error, never an empty table."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from testbed.measure.iproute import ReadError, ip_json


@dataclass
class Res:
    returncode: int
    stdout: str
    stderr: str = ""


def test_a_good_read() -> None:
    assert ip_json(Res(0, '[{"dst": "default"}]'), "routes") == [{"dst": "default"}]
    assert ip_json(Res(0, "[]\n"), "routes") == []  # really empty: ip said so


@pytest.mark.parametrize(("res", "words"), [
    (Res(1, "", 'Cannot open network namespace "x": No such file'), "exited 1"),
    (Res(255, "", ""), "exited 255"),
    (Res(0, ""), "printed no JSON"),  # once read as [] ("nothing there")
    (Res(0, "garbage"), "printed no JSON"),
    (Res(0, '{"a": 1}'), "not a list"),
    (Res(0, "[1, 2]"), "not a list"),
])
def test_a_failed_read_raises(res: Res, words: str) -> None:
    with pytest.raises(ReadError, match=words) as info:
        ip_json(res, "routes of node-1")
    assert "routes of node-1" in str(info.value)


def test_the_words_of_a_failed_read() -> None:
    long = "x" * 400
    with pytest.raises(ReadError) as info:
        ip_json(Res(1, "out", long), "routes")
    assert str(info.value) == f"routes: ip exited 1: {'x' * 300}"
    with pytest.raises(ReadError) as info:
        ip_json(Res(2, "only stdout", ""), "routes")
    assert str(info.value) == "routes: ip exited 2: only stdout"
    with pytest.raises(ReadError) as info:
        ip_json(Res(0, "y" * 400), "routes")
    assert str(info.value) == f"routes: ip printed no JSON: {'y' * 300!r}"
    with pytest.raises(ReadError) as info:
        ip_json(Res(0, '{"a": 1}'), "routes")
    assert str(info.value) == "routes: ip printed dict, not a list of objects"
