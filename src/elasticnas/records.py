"""Immutable records passed between the parts: objectives, constraints, trials."""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from elasticnas.errors import ElasticNASError

Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction."""

    name: str
    direction: Direction

    def __post_init__(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ElasticNASError(
                f"objective {self.name!r}: direction must be 'minimize' or 'maximize', got {self.direction!r}"
            )

    @property
    def sign(self) -> float:
        """+1 for minimise, -1 for maximise: multiply a value by it to minimise."""
        return 1.0 if self.direction == "minimize" else -1.0


def as_objectives(objectives: Mapping[str, str] | Sequence[Objective]) -> tuple[Objective, ...]:
    """Normalise ``{"name": "maximize", ...}`` or a sequence of Objectives."""
    objs = (
        tuple(Objective(n, d) for n, d in objectives.items())  # type: ignore[arg-type]  # Objective checks d
        if isinstance(objectives, Mapping)
        else tuple(objectives)
    )
    if not objs:
        raise ElasticNASError("at least one objective is needed")
    names = [o.name for o in objs]
    if len(set(names)) != len(names):
        raise ElasticNASError(f"objective names must be distinct, got {names}")
    return objs


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")
_NUMBER_RE = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_SYNTAX = "write METRIC<=NUMBER or METRIC>=NUMBER, e.g. latency_ms<=20"


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or None (NaN, infinite, too large, or not a real number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, for example ``latency_ms<=20``; the bound is a finite float, kept exactly.

    ``str(c)`` writes the bound with ``repr(float)``, so ``Constraint.parse(str(c)) == c``.
    """

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not _NAME_RE.fullmatch(self.metric):
            raise ElasticNASError(f"constraint metric {self.metric!r} is not a metric name (letters, digits, _ and .)")
        if self.op not in _OPS:
            raise ElasticNASError(f"constraint operator {self.op!r} is not one of {', '.join(_OPS)}")
        bound = _finite(self.bound)
        if bound is None:
            raise ElasticNASError(
                f"constraint on {self.metric!r}: the bound must be a finite number, got {self.bound!r}"
            )
        object.__setattr__(self, "bound", bound)

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """``METRIC<=NUMBER`` (or ``>=``, ``<``, ``>``) as a Constraint; one-line :class:`ElasticNASError` otherwise."""
        match = _CONSTRAINT_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ElasticNASError(f"cannot parse constraint {text!r}; {_SYNTAX}")
        number = match.group(3)
        if _NUMBER_RE.match(number):
            bound = float(number)  # 1e999 overflows to inf
        elif number.lstrip("+-").lower() in ("nan", "inf", "infinity"):
            bound = math.nan
        else:
            raise ElasticNASError(f"cannot parse constraint {text!r}; {_SYNTAX}")
        if not math.isfinite(bound):
            raise ElasticNASError(f"constraint {text!r}: the bound must be a finite number")
        return cls(match.group(1), match.group(2), bound)

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bound (0 when satisfied)."""
        if not math.isfinite(value):
            return math.inf
        if _OPS[self.op](value, self.bound):
            return 0.0
        return abs(value - self.bound) + (1e-12 if self.op in ("<", ">") else 0.0)

    def __str__(self) -> str:
        bound = repr(self.bound)
        return f"{self.metric}{self.op}{bound.removesuffix('.0')}"


def as_constraints(constraints: Sequence[str | Constraint] | None) -> tuple[Constraint, ...]:
    return tuple(c if isinstance(c, Constraint) else Constraint.parse(c) for c in (constraints or ()))


@dataclass(frozen=True)
class TrialRecord:
    """One finished evaluation of a configuration, as stored in the study."""

    number: int
    config: Mapping[str, Any]
    config_id: str
    metrics: Mapping[str, float]
    state: Literal["complete", "failed"] = "complete"
    duration_s: float | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @property
    def ok(self) -> bool:
        return self.state == "complete"

    def values(self, objectives: Sequence[Objective]) -> tuple[float, ...]:
        return tuple(float(self.metrics[o.name]) for o in objectives)

    def violation(self, constraints: Sequence[Constraint]) -> float:
        """Total constraint violation (0 when feasible; inf when a metric is missing)."""
        total = 0.0
        for c in constraints:
            if c.metric not in self.metrics:
                return math.inf
            total += c.violation(float(self.metrics[c.metric]))
        return total


def target_columns(
    objectives: Sequence[Objective], targets: Mapping[str, Sequence[str]]
) -> dict[str, tuple[int, ...]]:
    """The objective columns of each hardware target's front: the objectives it owns and those no target owns
    (shared by all), in the objectives' order."""
    owner = {m: t for t, names in targets.items() for m in names}
    return {t: tuple(j for j, o in enumerate(objectives) if owner.get(o.name, t) == t) for t in targets}


def minimization_matrix(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> np.ndarray:
    """(n, k) matrix of objective values, all turned into minimisation."""
    if not records:
        return np.zeros((0, len(objectives)))
    signs = np.array([o.sign for o in objectives])
    matrix: np.ndarray = np.array([r.values(objectives) for r in records], dtype=float) * signs
    return matrix
