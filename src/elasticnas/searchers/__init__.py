"""Searchers: propose configurations, learn from finished trials (ask / tell).

The built-in searchers are imported on first use (PEP 562 and lazy registry entries), so
``list_searchers()`` loads none of pymoo, Optuna, scikit-learn, SciPy or PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from elasticnas.records import Constraint, Objective
from elasticnas.registry import Registry, lazy_exports
from elasticnas.searchers.base import CheapMetric, Searcher
from elasticnas.space import SearchSpace, Seed

if TYPE_CHECKING:
    from elasticnas.searchers._linas import LINASSearcher
    from elasticnas.searchers._optuna import OptunaNSGA2Searcher, OptunaTPESearcher
    from elasticnas.searchers._predicted_hvi import PredictedHVISearcher
    from elasticnas.searchers._pymoo import (
        AGEMOEASearcher,
        NSGA2Searcher,
        PymooSearcher,
        SMSEMOASearcher,
        UNSGA3Searcher,
    )
    from elasticnas.searchers._random import RandomSearcher

_LAZY = {
    "AGEMOEASearcher": "elasticnas.searchers._pymoo",
    "NSGA2Searcher": "elasticnas.searchers._pymoo",
    "PymooSearcher": "elasticnas.searchers._pymoo",
    "SMSEMOASearcher": "elasticnas.searchers._pymoo",
    "UNSGA3Searcher": "elasticnas.searchers._pymoo",
    "LINASSearcher": "elasticnas.searchers._linas",
    "PredictedHVISearcher": "elasticnas.searchers._predicted_hvi",
    "OptunaNSGA2Searcher": "elasticnas.searchers._optuna",
    "OptunaTPESearcher": "elasticnas.searchers._optuna",
    "RandomSearcher": "elasticnas.searchers._random",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


SEARCHERS: Registry[Callable[..., Searcher]] = Registry("searcher")


def register_searcher(name: str, factory: Callable[..., Searcher], *, aliases: tuple[str, ...] = ()) -> None:
    """Register a searcher class (or factory).

    It must take ``(space, objectives, *, constraints, cheap_metrics, seed, **kw)``.
    """
    SEARCHERS.register(name, factory, aliases=aliases)


def list_searchers(pattern: str | None = None) -> list[str]:
    """Names of the registered searchers."""
    return SEARCHERS.names(pattern)


def create_searcher(
    name: str,
    space: SearchSpace,
    objectives: Sequence[Objective],
    *,
    constraints: Sequence[Constraint] = (),
    cheap_metrics: Mapping[str, CheapMetric] | None = None,
    seed: Seed = None,
    **kwargs: Any,
) -> Searcher:
    """Instantiate the searcher registered as ``name``."""
    factory = SEARCHERS.get(name)
    return factory(space, objectives, constraints=constraints, cheap_metrics=cheap_metrics, seed=seed, **kwargs)


SEARCHERS.register_lazy("random", "elasticnas.searchers._random:RandomSearcher")
SEARCHERS.register_lazy("nsga2", "elasticnas.searchers._pymoo:NSGA2Searcher")
SEARCHERS.register_lazy("agemoea", "elasticnas.searchers._pymoo:AGEMOEASearcher")
SEARCHERS.register_lazy("smsemoa", "elasticnas.searchers._pymoo:SMSEMOASearcher")
SEARCHERS.register_lazy("unsga3", "elasticnas.searchers._pymoo:UNSGA3Searcher")
SEARCHERS.register_lazy("predicted_hvi", "elasticnas.searchers._predicted_hvi:PredictedHVISearcher")
SEARCHERS.register_lazy("linas", "elasticnas.searchers._linas:LINASSearcher")
SEARCHERS.register_lazy("optuna_nsga2", "elasticnas.searchers._optuna:OptunaNSGA2Searcher")
SEARCHERS.register_lazy("optuna_tpe", "elasticnas.searchers._optuna:OptunaTPESearcher")

__all__ = [
    "AGEMOEASearcher",
    "CheapMetric",
    "LINASSearcher",
    "NSGA2Searcher",
    "PredictedHVISearcher",
    "OptunaNSGA2Searcher",
    "OptunaTPESearcher",
    "PymooSearcher",
    "RandomSearcher",
    "SMSEMOASearcher",
    "UNSGA3Searcher",
    "Searcher",
    "create_searcher",
    "list_searchers",
    "register_searcher",
]
