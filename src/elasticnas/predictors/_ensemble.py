"""Ensembles: a mean and an uncertainty from several predictors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from elasticnas.errors import ElasticNASError
from elasticnas.predictors.base import Predictor


class Ensemble(Predictor):
    """Average of member predictors.

    The std combines the members' own uncertainty and their disagreement
    (law of total variance): ``sqrt(mean(std_i^2) + var(mean_i))``.
    """

    has_uncertainty = True

    def __init__(self, members: Sequence[Predictor], seed: int | None = None) -> None:
        super().__init__(seed)
        if not members:
            raise ElasticNASError("an Ensemble needs at least one member")
        self.members = list(members)

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Ensemble:
        """Fit every member on ``y`` as given (each standardises it itself)."""
        super().fit(X, y, sample_weight)
        self._mu, self._sigma = 0.0, 1.0  # members predict in the units of y
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        y = self._mu + self._sigma * y  # undo the base class's standardisation
        for m in self.members:
            m.fit(X, y, sample_weight)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = [m.predict(X) for m in self.members]
        means = np.stack([p[0] for p in preds])
        var = np.stack([p[1] ** 2 for p in preds]).mean(axis=0) + means.var(axis=0)
        return means.mean(axis=0), np.sqrt(var)

    def __repr__(self) -> str:
        return f"Ensemble({', '.join(type(m).__name__ for m in self.members)})"
