"""String registries (``register_*`` / ``list_*`` / ``create_*`` are built on this) and lazy imports.

Built-in entries are registered as ``"package.module:attr"`` strings and imported on first
:meth:`Registry.get`, and packages expose their public names through :func:`lazy_exports`
(PEP 562), so that listing names or importing a package does not load PyTorch, scikit-learn,
SciPy or pymoo.

Plugins: the registries named in :data:`ENTRY_POINT_GROUPS` also hold the entry points that
installed packages declare in those groups, e.g. in a ``pyproject.toml``::

    [project.entry-points."elasticnas.supernets"]
    my_net = "my_package.nets:my_net_factory"

They are read at the registry's first look-up or listing and imported, like built-in entries,
at their first :meth:`Registry.get`.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from elasticnas.errors import UnknownNameError

T = TypeVar("T")

ENTRY_POINT_GROUPS = {
    "supernet": "elasticnas.supernets",
    "searcher": "elasticnas.searchers",
    "metric": "elasticnas.metrics",
}
"""The entry-point group whose plugins a registry of each kind holds (see the module docstring)."""


def lazy_exports(
    package: str, modules: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for ``package``, whose public name ``n`` lives in ``modules[n]``.

    A name is imported on first use and stored in the package, so later look-ups skip
    ``__getattr__``; a submodule not imported yet resolves too, as when the package imported it
    eagerly. Use as ``__getattr__, __dir__ = lazy_exports(__name__, {...})``.
    """

    def getattr_(name: str) -> Any:
        module = modules.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
            setattr(sys.modules[package], name, value)
            return value
        if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *modules})

    return getattr_, dir_


@dataclass(frozen=True)
class _Lazy:
    """An entry registered as ``"package.module:attr"``, not imported yet."""

    module: str
    attr: str

    def load(self) -> Any:
        return getattr(importlib.import_module(self.module), self.attr)


class Registry(Generic[T]):
    """A mapping from names (and aliases) to factories of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | _Lazy] = {}
        self._aliases: dict[str, str] = {}
        self._plugin_group = ENTRY_POINT_GROUPS.get(kind)  # None once its entry points are read

    def _has(self, key: str) -> bool:
        return key in self._entries or key in self._aliases

    def _load_plugins(self) -> None:
        """Register the entry points of this kind's group (once), lazily; a clash with a name is warned of
        and skipped."""
        group, self._plugin_group = self._plugin_group, None
        if group is None:
            return
        from importlib.metadata import entry_points

        for ep in entry_points(group=group):
            try:
                if self._has(ep.name):
                    raise ValueError(f"{self.kind} {ep.name!r} is already registered")
                self.register_lazy(ep.name, ep.value)
            except ValueError as exc:
                warnings.warn(f"entry point {ep.name!r} of group {group!r} ignored: {exc}", stacklevel=3)

    def _add(self, name: str, entry: T | _Lazy, aliases: tuple[str, ...]) -> None:
        for key in (name, *aliases):
            if self._has(key):
                raise ValueError(f"{self.kind} {key!r} is already registered")
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name

    def register(self, name: str, entry: T, *, aliases: tuple[str, ...] = ()) -> T:
        """Register ``entry`` under ``name`` (and ``aliases``); return it unchanged."""
        self._add(name, entry, aliases)
        return entry

    def register_lazy(self, name: str, target: str, *, aliases: tuple[str, ...] = ()) -> None:
        """Register the object ``"package.module:attr"`` under ``name``; it is imported on first :meth:`get`."""
        module, sep, attr = target.partition(":")
        if not (module and sep and attr):
            raise ValueError(f"{self.kind} {name!r}: expected 'package.module:attr', got {target!r}")
        self._add(name, _Lazy(module, attr), aliases)

    def decorator(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Return a decorator that registers its argument under ``name``."""

        def wrap(entry: T) -> T:
            return self.register(name, entry, aliases=aliases)

        return wrap

    def names(self, pattern: str | None = None, *, include_aliases: bool = False) -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern``."""
        self._load_plugins()
        keys = list(self._entries) + (list(self._aliases) if include_aliases else [])
        if pattern is not None:
            keys = [k for k in keys if fnmatch.fnmatch(k, pattern)]
        return sorted(keys)

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (which may be an alias)."""
        self._load_plugins()
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = ", ".join(self.names())
        raise UnknownNameError(f"unknown {self.kind} {name!r}; choose one of: {known}")

    def get(self, name: str) -> T:
        """The entry registered under ``name`` or one of its aliases (a lazy one imported now, then kept)."""
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, _Lazy):
            entry = self._entries[key] = cast(T, entry.load())
        return entry

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries or name in self._aliases
