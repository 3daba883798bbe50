"""LINAS (Cummings et al. 2022, "Accelerating neural architecture exploration across modalities using
genetic algorithms"), as DyNAS-T implements it, reproduced as a baseline.

DyNAS-T's ``LINAS.search`` (``dynast/search/tactic.py``, Apache-2.0):

1. evaluate a random population of ``population_size`` (50) sub-networks;
2. train one predictor per objective on every evaluation so far;
3. run pymoo NSGA-II on the predictors alone: population 50, ``inner_evals``
   predictor calls (20,000 for OFA-MobileNetV3: 400 generations), integer
   random sampling, SBX (prob 0.9, eta 15) and polynomial mutation (prob 0.02,
   eta 20) with rounding, duplicates eliminated;
4. evaluate the final population of that run; repeat from 2.

Deviations, each in the baseline's favour: configurations already evaluated
are not evaluated again (DyNAS-T re-evaluates them, spending budget); cheap
metrics are used exactly instead of predicted unless
``predict_cheap_metrics=True`` (DyNAS-T trains a predictor for latency /
MACs too). The accuracy predictor defaults to an RBF support-vector regressor,
as DyNAS-T's; the other registered predictors can be chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from elasticnas.predictors import Predictor, create_predictor
from elasticnas.records import TrialRecord
from elasticnas.searchers.base import Searcher
from elasticnas.space import Config

_PENALTY = 1e30


class _PredictedProblem(Problem):  # type: ignore[misc]  # pymoo ships no type information
    def __init__(self, searcher: LINASSearcher) -> None:
        card = searcher.space.cardinalities
        super().__init__(
            n_var=len(card),
            n_obj=len(searcher.objectives),
            n_ieq_constr=len(searcher.constraints),
            xl=np.zeros(len(card)),
            xu=card - 1,
            vtype=int,
        )
        self.searcher = searcher

    def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        G = np.clip(np.rint(X).astype(np.int64), 0, self.searcher.space.cardinalities - 1)
        F, G_con = self.searcher._predict_genes(G)
        out["F"] = F
        if self.n_ieq_constr:
            out["G"] = G_con


class LINASSearcher(Searcher):
    """DyNAS-T's LINAS: evaluate a population, fit predictors, run NSGA-II on the predictors, repeat."""

    def __init__(
        self,
        *args: Any,
        population_size: int = 50,
        inner_evals: int = 20000,
        predictor: str = "ridge",
        cheap_predictor: str = "ridge",
        predict_cheap_metrics: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.population_size = population_size
        self.inner_evals = inner_evals
        self.predictor_name = predictor
        self.cheap_predictor_name = cheap_predictor
        self.predict_cheap_metrics = predict_cheap_metrics
        self._queue: list[Config] = []
        self._predictors: dict[str, Predictor] = {}
        self._cache: dict[bytes, tuple[Config, dict[str, float]]] = {}
        self._loops = 0

    # -- helpers -----------------------------------------------------------------------------
    def _decode(self, G: np.ndarray) -> list[tuple[Config, dict[str, float]]]:
        """Config and exact cheap metrics of every canonical gene row (cached; new rows decoded in one batch)."""
        keys = [g.tobytes() for g in G]
        new = {k: i for i, k in enumerate(keys) if k not in self._cache}
        for k, cfg in zip(new, self.space.from_genes_many(G[list(new.values())]), strict=True):
            cheap = (
                {n: float(fn(cfg)) for n, fn in self.cheap_metrics.items()} if not self.predict_cheap_metrics else {}
            )
            self._cache[k] = (cfg, cheap)
        return [self._cache[k] for k in keys]

    def _features(self, G: np.ndarray) -> np.ndarray:
        return self.space.encode_genes(G, "onehot")

    def _predict_genes(self, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        G = self.space.canonical_genes(G)  # equal networks share one cache entry and one feature row
        decoded = self._decode(G)
        X = self._features(G)
        preds = {name: p.predict(X)[0] for name, p in self._predictors.items()}

        def column(metric: str) -> np.ndarray:
            if metric in preds:
                return preds[metric]
            if metric in self.cheap_metrics and not self.predict_cheap_metrics:
                return np.array([cheap[metric] for _, cheap in decoded])
            return np.full(len(G), np.nan)

        F = np.column_stack([o.sign * column(o.name) for o in self.objectives])
        F = np.where(np.isfinite(F), F, _PENALTY)
        Gc = np.zeros((len(G), len(self.constraints)))
        for j, c in enumerate(self.constraints):
            vals = column(c.metric)
            Gc[:, j] = [min(c.violation(float(v)), _PENALTY) if math.isfinite(v) else 0.0 for v in vals]
        return F, Gc

    def _metrics_to_predict(self) -> list[str]:
        names = [o.name for o in self.objectives] + [c.metric for c in self.constraints]
        out = []
        for n in names:
            if n in out:
                continue
            if n in self.cheap_metrics and not self.predict_cheap_metrics:
                continue
            out.append(n)
        return out

    # -- ask / tell ------------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Config]:
        if not self._queue:
            if self.pending:
                return []  # LINAS waits for its whole population
            done = [r for r in self.history.values() if r.ok]
            if len(done) < max(2, min(self.population_size, 10)):
                self._queue = self.space.sample_many(self.population_size, self.rng)
            else:
                self._queue = self._loop(done)
        out, self._queue = self._queue[:n], self._queue[n:]
        return out

    def _loop(self, done: Sequence[TrialRecord]) -> list[Config]:
        self._loops += 1
        G_hist = np.array([self.space.to_genes(r.config) for r in done])
        X = self._features(G_hist)
        seed = int(self.rng.integers(2**31 - 1))
        self._predictors = {}
        for name in self._metrics_to_predict():
            rows = [i for i, r in enumerate(done) if name in r.metrics]
            if len(rows) < 2:
                continue
            y = np.array([float(done[i].metrics[name]) for i in rows])
            kind = self.cheap_predictor_name if name in self.cheap_metrics else self.predictor_name
            self._predictors[name] = create_predictor(kind, seed=seed).fit(X[rows], y)
        algorithm = NSGA2(
            pop_size=self.population_size,
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(prob=0.02, eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        n_gen = max(1, round(self.inner_evals / self.population_size))
        result = minimize(_PredictedProblem(self), algorithm, ("n_gen", n_gen), seed=seed, verbose=False)
        X_final = np.clip(np.rint(result.pop.get("X")).astype(np.int64), 0, self.space.cardinalities - 1)
        return [cfg for cfg, _ in self._decode(self.space.canonical_genes(X_final))]

    def diagnostics(self) -> dict[str, Any]:
        return {"searcher": "linas", "loops": self._loops, "predictor": self.predictor_name}
