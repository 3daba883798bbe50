from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Value = int | float | str | bool


@dataclass(frozen=True, init=False)
class Choice:
    """A discrete choice: one of ``values``, or a list of ``size`` such choices.

    ``Choice([3, 5, 7], size=20)`` is a list of 20 kernel sizes;
    ``Choice([160, 224])`` (``size=None``) is a single scalar.
    """

    values: tuple[Value, ...]
    size: int | None
    _positions: dict[tuple[int, Any], int] = field(init=False, repr=False, compare=False)

    def __init__(self, values: Iterable[Value], size: int | None = None) -> None:
        vals = tuple(values)
        if not vals:
            raise ValueError("Choice needs at least one value")
        if len(set(vals)) != len(vals):
            raise ValueError(f"Choice values must be distinct, got {list(vals)}")
        for v in vals:
            if not isinstance(v, int | float | str | bool):
                raise TypeError(f"Choice values must be int, float, str or bool, got {v!r}")
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(f"Choice size must be a positive int or None, got {size!r}")
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "_positions", {_key(v): i for i, v in enumerate(vals)})

    @property
    def length(self) -> int:
        """Number of positions: ``size``, or 1 for a scalar."""
        return 1 if self.size is None else self.size

    def index(self, value: Any) -> int:
        """Position of ``value`` in :attr:`values`: numbers compare by value (``1 == 1.0``), but a
        bool only matches a bool and a string only a string."""
        try:
            return self._positions[_key(value)]
        except (KeyError, TypeError):  # TypeError: an unhashable value
            raise ValueError(value) from None

    def to_json(self) -> dict[str, Any]:
        return {"values": list(self.values), "size": self.size}


def _key(value: Any) -> tuple[int, Any]:
    """Lookup key of a value: its kind (bool, str, anything else) and the value."""
    kind = 0 if type(value) is bool else 1 if isinstance(value, str) else 2
    return kind, value
