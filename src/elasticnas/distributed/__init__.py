"""Evaluation on Ray: a pool of actors that each build their evaluator once.

Ray is an optional dependency (``pip install 'elasticnas[ray]'``); importing this
package does not import Ray.
"""

from elasticnas.distributed._factories import ProblemEvaluatorFactory
from elasticnas.distributed._optimize import optimize_parallel
from elasticnas.distributed._pool import Evaluator, EvaluatorFactory, RayRuntime, WorkerPool

__all__ = [
    "Evaluator",
    "EvaluatorFactory",
    "ProblemEvaluatorFactory",
    "RayRuntime",
    "WorkerPool",
    "optimize_parallel",
]
