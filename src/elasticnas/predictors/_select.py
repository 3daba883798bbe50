"""Model selection: the candidate predictor that ranks best in cross-validation."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from elasticnas.predictors._quality import cross_validate
from elasticnas.predictors.base import Predictor


class SelectedPredictor(Predictor):
    """Fits each candidate in ``n_folds``-fold cross-validation, keeps the one with the highest
    Kendall τ (ties: the earlier candidate) and refits it on all the data.

    Spaces differ in what predicts them: a linear model on one-hot features ranks OFA-MobileNetV3
    well, while spaces with strong interactions (a resolution that scales every layer) need trees.
    """

    has_uncertainty = True

    def __init__(
        self, seed: int | None = None, candidates: Sequence[str] = ("ridge", "extra_trees"), n_folds: int = 3
    ) -> None:
        super().__init__(seed)
        self.candidates = tuple(candidates)
        self.n_folds = n_folds
        self.chosen: str | None = None
        self._model: Predictor | None = None

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        from elasticnas.predictors import create_predictor

        best = self.candidates[0]
        if len(self.candidates) > 1 and len(y) >= 2 * self.n_folds:
            taus = [
                cross_validate(functools.partial(create_predictor, name, seed=self.seed), X, y, self.n_folds, self.seed)
                .kendall_tau
                for name in self.candidates
            ]
            best = self.candidates[int(np.nanargmax(np.nan_to_num(taus, nan=-1.0)))]
        self.chosen = best
        self._model = create_predictor(best, seed=self.seed).fit(X, y, sample_weight)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self._model is not None
        return self._model.predict(X)
