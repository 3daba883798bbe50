"""The contract of a built-in benchmark problem."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from elasticnas.records import Direction, Objective
from elasticnas.searchers.base import CheapMetric
from elasticnas.space import Config, SearchSpace


@dataclass(frozen=True)
class Problem:
    """A search problem: a space, objectives, an expensive evaluation and exact cheap metrics.

    ``evaluate(config)`` returns the expensive metrics (the ones a study counts
    as evaluations); ``cheap_metrics`` maps names to functions computed exactly
    for any candidate. Together they supply every objective. ``measurement`` says how a
    super-network problem measures (see :meth:`Study.set_measurement`). ``reference_point``
    (objective units) fixes the hypervolume reference; ``reference_front()``
    returns the best known front in objective units, when the problem has one.

    ``targets`` (hardware targets, e.g. devices) map a target's name to its own objectives (its
    latency, energy, ...); the objectives in no target (accuracy, ...) are shared by all. A study
    over such a problem finds the front of every target at once: each target's front is over the
    shared objectives and its own (:meth:`Study.pareto_front` with ``target=``).
    """

    name: str
    space: SearchSpace
    objectives: Mapping[str, Direction]
    evaluate: Callable[[Config], dict[str, float]]
    cheap_metrics: Mapping[str, CheapMetric] = field(default_factory=dict)
    reference_point: tuple[float, ...] | None = None
    description: str = ""
    reference_front_fn: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)
    measurement: Mapping[str, Any] | None = None
    targets: Mapping[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", MappingProxyType(dict(self.objectives)))
        if self.targets is not None:
            object.__setattr__(self, "targets", MappingProxyType({t: tuple(m) for t, m in self.targets.items()}))
        object.__setattr__(self, "cheap_metrics", MappingProxyType(dict(self.cheap_metrics)))
        if self.reference_point is not None:
            if len(self.reference_point) != len(self.objectives):
                raise ValueError(f"problem {self.name!r}: reference_point needs {len(self.objectives)} values")
            object.__setattr__(self, "reference_point", tuple(float(x) for x in self.reference_point))

    @property
    def objective_list(self) -> tuple[Objective, ...]:
        return tuple(Objective(n, d) for n, d in self.objectives.items())

    def __call__(self, config: Config) -> dict[str, float]:
        """All metrics of ``config``: the expensive evaluation plus every cheap metric."""
        out = dict(self.evaluate(config))
        for name, fn in self.cheap_metrics.items():
            out.setdefault(name, float(fn(config)))
        return out

    def reference_front(self) -> np.ndarray | None:
        """Best known Pareto front, (n, k) in objective units (objective order), or None."""
        return None if self.reference_front_fn is None else self.reference_front_fn()

    def reference_point_min(self) -> np.ndarray | None:
        """The reference point in minimisation form (maximised objectives negated)."""
        if self.reference_point is None:
            return None
        point: np.ndarray = np.array(self.reference_point) * np.array([o.sign for o in self.objective_list])
        return point

    def study_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`elasticnas.create_study` matching this problem."""
        return {
            "space": self.space,
            "objectives": dict(self.objectives),
            "reference_point": list(self.reference_point) if self.reference_point is not None else None,
            "targets": None if self.targets is None else {t: list(m) for t, m in self.targets.items()},
        }
