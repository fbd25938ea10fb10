"""A topology file read as the loader needs it: only a regular file of at most
MAX_FILE_BYTES (a FIFO or /dev/zero is refused before reading), strict YAML (no aliases,
no duplicate keys, bounded nesting), every problem a one-line SpecError naming the line;
then testbed.model.load.topology validates what it holds."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from testbed.errors import SpecError
from testbed.errors import quote as show
from testbed.model.load.topology import parse_spec
from testbed.model.spec import ClusterSpec

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 20  # the deepest topology file nests 6 levels


class _StrictLoader(yaml.SafeLoader):
    """YAML as topology files need it: no aliases (a few lines of them expand to
    gigabytes), no duplicate keys (the last would silently win), bounded nesting."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{show(event.anchor)[1:-1]}) are not supported in "
                "topology files: write the value out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {show(key)}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _read(source: str, path: Path) -> str:
    """A regular file's text, refused before reading if it is anything else or too big
    (O_NONBLOCK: opening a FIFO must not wait for a writer)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SpecError(source, "(file)", "no such file") from None
    except OSError as exc:
        raise SpecError(source, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(source, "(file)", "is a directory, not a topology file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(source, "(file)", "is not a regular file (a FIFO, socket or device)")
        if info.st_size > MAX_FILE_BYTES:
            raise SpecError(source, "(file)", f"is {info.st_size} bytes; topology files of at "
                            f"most {MAX_FILE_BYTES} bytes are read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(source, "(file)", f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:  # it grew while we read
        raise SpecError(source, "(file)", f"is larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(source, "(file)", f"cannot be read: not UTF-8 ({exc.reason} at byte "
                        f"{exc.start})") from None


def load_spec(path: str | Path) -> ClusterSpec:
    """Read and validate a topology file; every problem is a one-line SpecError."""
    source = str(path)
    text = _read(source, Path(path))
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, (yaml.composer.ComposerError, yaml.constructor.ConstructorError)):
            raise SpecError(source, line, f"YAML: {problem}") from None
        raise SpecError(source, line, f"YAML syntax error: {problem}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5000 digits
        raise SpecError(source, "(file)", f"cannot be read: {type(exc).__name__}: "
                        f"{show(str(exc))[1:-1]}") from None
    return parse_spec(data, source)
