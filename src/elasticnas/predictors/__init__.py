"""Predictors: fit on encoded configurations, predict a mean and an uncertainty; quality metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from elasticnas.predictors._ensemble import Ensemble
from elasticnas.predictors._mlp import MLPPredictor
from elasticnas.predictors._quality import PredictorQuality, cross_validate, kendall_tau
from elasticnas.predictors._select import SelectedPredictor
from elasticnas.predictors._sklearn import (
    ExtraTreesPredictor,
    GBMPredictor,
    GPPredictor,
    RidgePredictor,
    SVRPredictor,
)
from elasticnas.predictors.base import Predictor
from elasticnas.registry import Registry

PREDICTORS: Registry[Callable[..., Predictor]] = Registry("predictor")


def register_predictor(name: str, factory: Callable[..., Predictor], *, aliases: tuple[str, ...] = ()) -> None:
    """Register a predictor class (or factory) taking ``seed=`` and keyword options."""
    PREDICTORS.register(name, factory, aliases=aliases)


def list_predictors(pattern: str | None = None) -> list[str]:
    """Names of the registered predictors."""
    return PREDICTORS.names(pattern)


def create_predictor(name: str, seed: int | None = None, **kwargs: Any) -> Predictor:
    """A fresh, unfitted predictor registered as ``name``."""
    return PREDICTORS.get(name)(seed=seed, **kwargs)


def create_ensemble(names: Sequence[str], seed: int | None = None) -> Ensemble:
    """An :class:`Ensemble` of the named predictors (member ``i`` seeded ``seed + i``)."""
    return Ensemble([create_predictor(n, seed=None if seed is None else seed + i) for i, n in enumerate(names)], seed=seed)


def _default_ensemble(seed: int | None = None) -> Ensemble:
    return create_ensemble(("ridge", "extra_trees"), seed=seed)


register_predictor("ridge", RidgePredictor)
register_predictor("svr", SVRPredictor)
register_predictor("gbm", GBMPredictor)
register_predictor("extra_trees", ExtraTreesPredictor)
register_predictor("gp", GPPredictor)
register_predictor("mlp", MLPPredictor)
register_predictor("ensemble", _default_ensemble)
register_predictor("auto", SelectedPredictor)

__all__ = [
    "Ensemble",
    "ExtraTreesPredictor",
    "GBMPredictor",
    "GPPredictor",
    "SelectedPredictor",
    "MLPPredictor",
    "Predictor",
    "PredictorQuality",
    "RidgePredictor",
    "SVRPredictor",
    "create_ensemble",
    "create_predictor",
    "cross_validate",
    "kendall_tau",
    "list_predictors",
    "register_predictor",
]
