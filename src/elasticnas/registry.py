"""String registries: ``register_*`` / ``list_*`` / ``create_*`` are built on this."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

from elasticnas.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names (and aliases) to factories of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, entry: T, *, aliases: tuple[str, ...] = ()) -> T:
        """Register ``entry`` under ``name`` (and ``aliases``); return it unchanged."""
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is already registered")
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return entry

    def decorator(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Return a decorator that registers its argument under ``name``."""

        def wrap(entry: T) -> T:
            return self.register(name, entry, aliases=aliases)

        return wrap

    def names(self, pattern: str | None = None, *, include_aliases: bool = False) -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern``."""
        keys = list(self._entries) + (list(self._aliases) if include_aliases else [])
        if pattern is not None:
            keys = [k for k in keys if fnmatch.fnmatch(k, pattern)]
        return sorted(keys)

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (which may be an alias)."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = ", ".join(self.names())
        raise UnknownNameError(f"unknown {self.kind} {name!r}; choose one of: {known}")

    def get(self, name: str) -> T:
        """The entry registered under ``name`` or one of its aliases."""
        return self._entries[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases
