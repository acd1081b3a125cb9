"""Things found by name: strategies and step scorers, built in or added from outside.

A name maps to the object itself or to a `"module:attr"` string imported on first use, so
a table of names costs no imports. Installed packages add names through an entry-point group
(`ponder.strategies`, `ponder.scorers`), read the first time a name is missing or the names
are listed; every entry goes through `register`, built-in ones included.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def target_of(obj: object) -> str:
    """`module:qualname`, how a registered object is told apart from another of the same name."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def import_target(target: str) -> Any:
    """The object a `"module:attr"` string names (`attr` may be dotted); ImportError or
    AttributeError when it is not there."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def registrar(add: Callable[[str | None, Any], Any], what: Any, target: Any, name: str | None) -> Any:
    """The shapes every `register_*` call takes: `@register` and `@register("name")` on a
    class, `register(obj)`, `register("name", obj)` and `register("name", "module:attr")`.
    `add(name, obj)` registers one object (`name` None: the object's own)."""
    if isinstance(what, str):
        return (lambda obj: add(what, obj)) if target is None else add(what, target)
    if what is None:
        return lambda obj: add(name, obj)
    return add(name, what)


class Registry(Mapping[str, "T | str"], Generic[T]):
    """Names to objects (or `"module:attr"` strings until loaded). Registering a name twice
    for two different objects is an error; registering the same one again is not (a module
    imported twice, a package installed in two places)."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind  # "strategy", "scorer": for messages
        self.group = group  # the entry-point group installed packages register under
        self._table: dict[str, T | str] = {}
        self._discovered = False

    def register(self, name: str, target: T | str) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: expected 'module:attr', got {target!r}")
        old = self._table.get(name)
        if old is not None and _key(old) != _key(target):
            raise ValueError(f"{self.kind} {name!r} is already registered as {_key(old)}, not {_key(target)}")
        if old is None or not isinstance(target, str):
            self._table[name] = target

    def load(self, name: str) -> T:
        """The object registered as `name`, imported if it was a string."""
        if name not in self._table:
            self.discover()
        if name not in self._table:
            raise ValueError(f"unknown {self.kind} {name!r}: expected one of {', '.join(sorted(self))}")
        target = self._table[name]
        if isinstance(target, str):
            try:
                obj = import_target(target)
            except (ImportError, AttributeError) as e:
                raise ValueError(f"{self.kind} {name!r}: cannot load {target}: {e}") from None
            self._table[name] = target = obj  # type: ignore[assignment]
        return target  # type: ignore[return-value]

    def discover(self) -> None:
        """Register the entry points of installed packages (once per process)."""
        if self._discovered:
            return
        self._discovered = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            try:
                self.register(ep.name, ep.value)
            except ValueError as e:
                raise ValueError(f"entry point {ep.name} = {ep.value} in group {self.group}: {e}") from None

    # -- Mapping: listing names reads the entry points too --------------------------------------
    def __getitem__(self, name: str) -> T | str:
        if name not in self._table:
            self.discover()
        return self._table[name]

    def __contains__(self, name: object) -> bool:
        if name not in self._table:
            self.discover()
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        self.discover()
        return iter(list(self._table))

    def __len__(self) -> int:
        self.discover()
        return len(self._table)


def _key(target: object) -> str:
    return target if isinstance(target, str) else target_of(target)
