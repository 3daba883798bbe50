"""Searchers: propose configurations, learn from finished trials (ask / tell)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from elasticnas.records import Constraint, Objective
from elasticnas.registry import Registry
from elasticnas.searchers._pymoo import AGEMOEASearcher, NSGA2Searcher, PymooSearcher, SMSEMOASearcher
from elasticnas.searchers._linas import LINASSearcher
from elasticnas.searchers._predicted_hvi import PredictedHVISearcher
from elasticnas.searchers._optuna import OptunaNSGA2Searcher, OptunaTPESearcher
from elasticnas.searchers._random import RandomSearcher
from elasticnas.searchers.base import CheapMetric, Searcher
from elasticnas.space import SearchSpace, Seed

SEARCHERS: Registry[Callable[..., Searcher]] = Registry("searcher")


def register_searcher(name: str, factory: Callable[..., Searcher], *, aliases: tuple[str, ...] = ()) -> None:
    """Register a searcher class (or factory) taking ``(space, objectives, *, constraints, cheap_metrics, seed, **kw)``."""
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


register_searcher("random", RandomSearcher)
register_searcher("nsga2", NSGA2Searcher)
register_searcher("agemoea", AGEMOEASearcher)
register_searcher("smsemoa", SMSEMOASearcher)
register_searcher("predicted_hvi", PredictedHVISearcher)
register_searcher("linas", LINASSearcher)
register_searcher("optuna_nsga2", OptunaNSGA2Searcher)
register_searcher("optuna_tpe", OptunaTPESearcher)

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
    "Searcher",
    "create_searcher",
    "list_searchers",
    "register_searcher",
]
