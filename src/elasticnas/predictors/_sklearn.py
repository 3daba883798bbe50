"""Predictors built on scikit-learn regressors."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor
from sklearn.linear_model import BayesianRidge
from sklearn.svm import SVR

from elasticnas.predictors.base import Predictor


class RidgePredictor(Predictor):
    """Bayesian ridge regression (scikit-learn ``BayesianRidge``): a linear model with a predictive std."""

    has_uncertainty = True

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        self.model = BayesianRidge().fit(X, y, sample_weight=sample_weight)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.model.predict(X, return_std=True)
        return mean, std


class SVRPredictor(Predictor):
    """Support-vector regression with an RBF kernel (DyNAS-T's accuracy predictor is of this kind)."""

    def __init__(self, seed: int | None = None, C: float = 10.0, epsilon: float = 0.01) -> None:
        super().__init__(seed)
        self.C, self.epsilon = C, epsilon

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        self.model = SVR(kernel="rbf", C=self.C, epsilon=self.epsilon, gamma="scale").fit(
            X, y, sample_weight=sample_weight
        )

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.model.predict(X), np.zeros(len(X))


class GBMPredictor(Predictor):
    """Gradient-boosted regression trees (scikit-learn ``GradientBoostingRegressor``)."""

    def __init__(self, seed: int | None = None, n_estimators: int = 200, max_depth: int = 3) -> None:
        super().__init__(seed)
        self.n_estimators, self.max_depth = n_estimators, max_depth

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        self.model = GradientBoostingRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=0.05,
            subsample=0.8,
            random_state=self.seed,
        ).fit(X, y, sample_weight=sample_weight)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.model.predict(X), np.zeros(len(X))


class ExtraTreesPredictor(Predictor):
    """Extremely randomised trees; the std is the spread of the trees' predictions."""

    has_uncertainty = True

    def __init__(self, seed: int | None = None, n_estimators: int = 50, min_samples_leaf: int = 2) -> None:
        super().__init__(seed)
        self.n_estimators, self.min_samples_leaf = n_estimators, min_samples_leaf

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        self.model = ExtraTreesRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=0.5,
            random_state=self.seed,
            n_jobs=1,
        ).fit(X, y, sample_weight=sample_weight)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # trees split on float32; skip per-tree input checks
        per_tree = np.stack([t.predict(X32, check_input=False) for t in self.model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)
