"""The predictor contract: fit on encoded configurations, predict a mean and an uncertainty."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from elasticnas.errors import ElasticNASError


class Predictor(ABC):
    """Regressor from encoded configurations ``X`` (n, d) to one metric ``y`` (n,).

    :meth:`fit` checks the inputs, standardises ``y`` and calls :meth:`_fit`;
    :meth:`predict` returns ``(mean, std)`` in the units of ``y``. ``std`` is
    the model's own uncertainty where it has one (Gaussian process, Bayesian
    ridge, tree spread) and zeros otherwise (:attr:`has_uncertainty` tells);
    an :class:`~elasticnas.predictors.Ensemble` adds its members' disagreement.
    """

    has_uncertainty: bool = False
    #: Group index of each feature column, or None: set by callers that know the encoding (a searcher: one
    #: group per choice of its space) before :meth:`fit`; a predictor that measures distances between
    #: configurations (the Gaussian process) weighs each group by its own fitted length scale, others ignore it.
    feature_groups: np.ndarray | None = None

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._mu = 0.0
        self._sigma = 1.0
        self._fitted = False

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Predictor:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        if X.ndim != 2 or len(X) != len(y):
            raise ElasticNASError(f"predictor fit needs X (n, d) and y (n,), got {X.shape} and {y.shape}")
        if len(y) < 2:
            raise ElasticNASError(f"a predictor needs at least 2 training points, got {len(y)}")
        if not np.all(np.isfinite(y)):
            raise ElasticNASError("predictor targets must be finite")
        self._mu = float(y.mean())
        self._sigma = float(y.std()) or 1.0
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=float).ravel()
            if sample_weight.shape != y.shape or np.any(sample_weight < 0):
                raise ElasticNASError("sample_weight must be non-negative, one per target")
        self._fit(X, (y - self._mu) / self._sigma, sample_weight)
        self._fitted = True
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._fitted:
            raise ElasticNASError(f"{type(self).__name__} must be fitted before predict")
        X = np.atleast_2d(np.asarray(X, dtype=float))
        mean, std = self._predict(X)
        return self._mu + self._sigma * np.asarray(mean, dtype=float), self._sigma * np.asarray(std, dtype=float)

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        """Fit on standardised targets (``sample_weight`` where the model supports it)."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std in standardised units."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"
