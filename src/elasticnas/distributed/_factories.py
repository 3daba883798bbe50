"""Picklable evaluator factories for the built-in problems."""

from __future__ import annotations

from dataclasses import dataclass

from elasticnas.distributed._pool import Evaluator


@dataclass(frozen=True)
class ProblemEvaluatorFactory:
    """Builds the expensive evaluation of the built-in problem ``name`` inside a worker."""

    name: str

    def __call__(self) -> Evaluator:
        from elasticnas.problems import create_problem

        return create_problem(self.name).evaluate
