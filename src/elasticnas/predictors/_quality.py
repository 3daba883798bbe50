"""Cross-validated predictor quality: Kendall tau and mean absolute error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import kendalltau

from elasticnas.errors import ElasticNASError
from elasticnas.predictors.base import Predictor


@dataclass(frozen=True)
class PredictorQuality:
    """Out-of-fold quality of a predictor on ``n_train`` points."""

    kendall_tau: float
    mae: float
    n_train: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall's tau-b (0 when undefined, e.g. constant predictions)."""
    tau = kendalltau(np.asarray(y_true), np.asarray(y_pred)).statistic
    return 0.0 if not np.isfinite(tau) else float(tau)


def cross_validate(
    make: Callable[[], Predictor], X: np.ndarray, y: np.ndarray, n_folds: int = 5, seed: int | None = 0
) -> PredictorQuality:
    """K-fold cross-validation of fresh ``make()`` predictors; tau and MAE on the pooled out-of-fold predictions."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    n = len(y)
    if n < 4:
        raise ElasticNASError(f"cross-validation needs at least 4 points, got {n}")
    k = max(2, min(n_folds, n // 2))
    folds = np.array_split(np.random.default_rng(seed).permutation(n), k)
    pred = np.empty(n)
    for idx in folds:
        train = np.setdiff1d(np.arange(n), idx)
        pred[idx] = make().fit(X[train], y[train]).predict(X[idx])[0]
    return PredictorQuality(kendall_tau(y, pred), float(np.mean(np.abs(pred - y))), n)
