"""Predictors: fit on encoded configurations, predict a mean and an uncertainty; quality metrics.

The built-in predictors and the quality metrics are imported on first use (PEP 562 and lazy
registry entries), so ``list_predictors()`` loads none of scikit-learn, SciPy or PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from elasticnas.predictors._ensemble import Ensemble
from elasticnas.predictors.base import Predictor
from elasticnas.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from elasticnas.predictors._gp import GPPredictor
    from elasticnas.predictors._mlp import MLPPredictor
    from elasticnas.predictors._quality import PredictorQuality, cross_validate, kendall_tau
    from elasticnas.predictors._select import SelectedPredictor
    from elasticnas.predictors._sklearn import (
        ExtraTreesPredictor,
        GBMPredictor,
        RidgePredictor,
        SVRPredictor,
    )

_LAZY = {
    "MLPPredictor": "elasticnas.predictors._mlp",
    "PredictorQuality": "elasticnas.predictors._quality",
    "cross_validate": "elasticnas.predictors._quality",
    "kendall_tau": "elasticnas.predictors._quality",
    "SelectedPredictor": "elasticnas.predictors._select",
    "ExtraTreesPredictor": "elasticnas.predictors._sklearn",
    "GBMPredictor": "elasticnas.predictors._sklearn",
    "GPPredictor": "elasticnas.predictors._gp",
    "RidgePredictor": "elasticnas.predictors._sklearn",
    "SVRPredictor": "elasticnas.predictors._sklearn",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
    members = [create_predictor(n, seed=None if seed is None else seed + i) for i, n in enumerate(names)]
    return Ensemble(members, seed=seed)


def _gp_variant(**options: Any) -> Callable[..., Predictor]:
    """A factory of :class:`GPPredictor` with ``options`` fixed (imported when first called)."""

    def factory(seed: int | None = None, **kwargs: Any) -> Predictor:
        from elasticnas.predictors._gp import GPPredictor

        return GPPredictor(seed=seed, **options, **kwargs)

    return factory


def _default_ensemble(seed: int | None = None) -> Ensemble:
    return create_ensemble(("ridge", "extra_trees"), seed=seed)


PREDICTORS.register_lazy("ridge", "elasticnas.predictors._sklearn:RidgePredictor")
PREDICTORS.register_lazy("svr", "elasticnas.predictors._sklearn:SVRPredictor")
PREDICTORS.register_lazy("gbm", "elasticnas.predictors._sklearn:GBMPredictor")
PREDICTORS.register_lazy("extra_trees", "elasticnas.predictors._sklearn:ExtraTreesPredictor")
PREDICTORS.register_lazy("gp", "elasticnas.predictors._gp:GPPredictor")
register_predictor("gp_linear", _gp_variant(linear=True))
register_predictor("gp_warped", _gp_variant(warp=True))
PREDICTORS.register_lazy("mlp", "elasticnas.predictors._mlp:MLPPredictor")
register_predictor("ensemble", _default_ensemble)
PREDICTORS.register_lazy("auto", "elasticnas.predictors._select:SelectedPredictor")

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
