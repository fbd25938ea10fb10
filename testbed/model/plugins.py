"""One registry for every kind of plug-in (pod networks, kube-proxy modes, ...). Pure.

A plug-in kind is a set of classes (or objects), each with a unique `name`, chosen by
that name from a topology file or a command line. Every kind is looked up the same way,
so an unknown name fails the same way everywhere: a `UsageError` naming the kind and
listing the names that exist, as containerlab's `NewNodeOfKind` does, instead of a bare
`KeyError` from a dictionary.

The registry is a read-only `Mapping` (name -> entry, in the order given), so `in`,
iteration, `items()` and `get()` work as on the dictionaries it replaces; its lookup
error is also a `KeyError` for the same reason (`Mapping.get` and `in` rely on it).
"""

from __future__ import annotations

from typing import Callable, Generic, Iterable, Iterator, Mapping, TypeVar

from testbed.errors import UsageError, quote

T = TypeVar("T")


class UnknownPluginError(UsageError, KeyError):
    """A name no plug-in of the kind has: says which kind and which names exist."""

    def __init__(self, kind: str, name: object, known: Iterable[str]) -> None:
        self.kind, self.name, self.known = kind, name, tuple(known)
        super().__init__(f"unknown {kind} {quote(name)}; the {kind}s are "
                         f"{', '.join(self.known)}")

    def __str__(self) -> str:
        # KeyError would show the message quoted, as if it were the missing key
        return str(self.args[0])


def _name(entry: object) -> str:
    return entry.name  # type: ignore[attr-defined]  # every plug-in kind has one


class Registry(Mapping[str, T], Generic[T]):
    """The plug-ins of one kind, by name, in the order given (the order users see)."""

    def __init__(self, kind: str, entries: Iterable[T],
                 key: Callable[[T], str] = _name) -> None:
        self.kind = kind
        self._by_name: dict[str, T] = {}
        for entry in entries:
            name = key(entry)
            if name in self._by_name:  # a programming error, caught by any import
                raise ValueError(f"two {kind}s are called {name!r}")
            self._by_name[name] = entry

    @property
    def names(self) -> tuple[str, ...]:
        """Every name, in order: argparse's choices, a validation message."""
        return tuple(self._by_name)

    def __getitem__(self, name: str) -> T:
        try:
            return self._by_name[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a YAML file
            raise UnknownPluginError(self.kind, name, self._by_name) from None

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._by_name
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {', '.join(self._by_name)})"
