from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.evaluator import Evaluator
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.problems.static import StaticProblem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from elasticnas.errors import ElasticNASError
from elasticnas.records import TrialRecord
from elasticnas.searchers.base import Searcher
from elasticnas.space import Config

# Stands in for the objectives of failed or cheap-infeasible candidates.
_PENALTY = 1e30


class PymooSearcher(Searcher):
    """Drives a pymoo population-based algorithm through its ask/tell interface.

    Each generation's individuals are decoded to configurations; those already
    in the history get their values at once, the rest are proposed for
    evaluation. When every individual has values, the generation is told to
    pymoo and the next one is asked for. A study resumed with finished trials
    seeds the first generation with the best of them.
    """

    algorithm_name: ClassVar[str]

    def __init__(self, *args: Any, population_size: int = 50, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.population_size = population_size
        card = self.space.cardinalities
        self._problem = Problem(
            n_var=self.space.n_genes,
            n_obj=len(self.objectives),
            n_ieq_constr=len(self.constraints) + 1,  # the last one flags failed trials
            xl=np.zeros_like(card),
            xu=card - 1,
            vtype=int,
        )
        self._algorithm: Algorithm | None = None
        self._population: Population | None = None
        self._F = np.zeros((0, 0))
        self._G = np.zeros((0, 0))
        self._waiting: dict[str, list[int]] = {}  # config id -> individuals awaiting values
        self._queue: list[Config] = []

    # -- operators ------------------------------------------------------------------------
    def _operators(self) -> dict[str, Any]:
        return {
            "crossover": SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            "mutation": PM(eta=20, vtype=float, repair=RoundingRepair()),
            "eliminate_duplicates": True,
        }

    def _make_algorithm(self, sampling: Any) -> Algorithm:
        raise NotImplementedError

    # -- ask / tell plumbing ----------------------------------------------------------------
    def _propose(self, n: int) -> list[Config]:
        for _ in range(100):
            if self._queue:
                out, self._queue = self._queue[:n], self._queue[n:]
                return out
            if self._waiting:
                return []  # the current generation still awaits results
            self._next_generation()
            if self._population is None:
                return []  # no new offspring at all
        return []

    def _next_generation(self) -> None:
        if self._algorithm is None:
            self._algorithm = self._make_algorithm(self._initial_sampling())
            self._algorithm.setup(self._problem, seed=int(self.rng.integers(2**31 - 1)), termination=NoTermination())
        elif self._population is not None:
            static = StaticProblem(self._problem, F=self._F, G=self._G)
            Evaluator().eval(static, self._population)
            self._algorithm.tell(infills=self._population)
        pop = self._algorithm.ask()
        if pop is None or len(pop) == 0:  # every offspring was a duplicate: the space near the population is spent
            self._population = None
            return
        X = np.clip(np.rint(pop.get("X")).astype(np.int64), 0, self.space.cardinalities - 1)
        pop.set("X", X)
        self._population = pop
        self._F = np.zeros((len(pop), len(self.objectives)))
        self._G = np.zeros((len(pop), len(self.constraints) + 1))
        for i, cfg in enumerate(self.space.from_genes_many(X)):
            cid = self.space.config_id(cfg)
            if cid in self.history:
                self._set_values(i, self.history[cid])
            elif not self.cheap_feasible(cfg):
                self._F[i] = _PENALTY
                cheap = self.cheap(cfg)
                self._G[i, :-1] = [c.violation(cheap[c.metric]) if c.metric in cheap else 0.0 for c in self.constraints]
            else:
                if cid not in self._waiting:
                    self._queue.append(cfg)
                self._waiting.setdefault(cid, []).append(i)

    def _set_values(self, i: int, record: TrialRecord) -> None:
        F = self.objective_values(record)
        self._F[i] = np.where(np.isfinite(F), F, _PENALTY)
        self._G[i, :-1] = [
            min(c.violation(float(record.metrics.get(c.metric, np.inf))), _PENALTY) for c in self.constraints
        ]
        self._G[i, -1] = 0.0 if record.ok else 1.0

    def _observe(self, records: Sequence[TrialRecord]) -> None:
        for r in records:
            for i in self._waiting.pop(r.config_id, []):
                self._set_values(i, r)

    def _initial_sampling(self) -> Any:
        """Random integers, or the best finished trials when resuming a study."""
        done = [r for r in self.history.values() if r.ok]
        if not done:
            return IntegerRandomSampling()
        F = np.array([self.objective_values(r) for r in done])
        order = np.concatenate(NonDominatedSorting().do(F)).astype(int)[: self.population_size]
        X = [self.space.to_genes(done[i].config) for i in order]
        X += [self.space.to_genes(c) for c in self.space.sample_many(self.population_size - len(X), self.rng)]
        return np.array(X)


class NSGA2Searcher(PymooSearcher):
    """pymoo's NSGA-II (Deb et al. 2002) with integer SBX / polynomial mutation."""

    def _make_algorithm(self, sampling: Any) -> Algorithm:
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2(pop_size=self.population_size, sampling=sampling, **self._operators())


class AGEMOEASearcher(PymooSearcher):
    """pymoo's AGE-MOEA (Panichella 2019), adaptive geometry estimation; needs numba (``elasticnas[agemoea]``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            import numba  # noqa: F401  (pymoo's AGE-MOEA compiles its survival with it)
        except ImportError:
            raise ElasticNASError("searcher 'agemoea' needs numba: pip install 'elasticnas[agemoea]'") from None
        super().__init__(*args, **kwargs)

    def _make_algorithm(self, sampling: Any) -> Algorithm:
        from pymoo.algorithms.moo.age import AGEMOEA

        return AGEMOEA(pop_size=self.population_size, sampling=sampling, **self._operators())


class SMSEMOASearcher(PymooSearcher):
    """pymoo's SMS-EMOA (Beume et al. 2007), hypervolume-contribution survival."""

    def _make_algorithm(self, sampling: Any) -> Algorithm:
        from pymoo.algorithms.moo.sms import SMSEMOA

        return SMSEMOA(
            pop_size=self.population_size, sampling=sampling, n_offsprings=self.population_size, **self._operators()
        )


class UNSGA3Searcher(PymooSearcher):
    """pymoo's U-NSGA-III (Seada and Deb 2016; DyNAS-T's three-objective algorithm): NSGA-III's reference
    directions (Das-Dennis, ``n_partitions`` per objective axis) with tournament selection of parents."""

    def __init__(self, *args: Any, n_partitions: int | None = None, **kwargs: Any) -> None:
        self.n_partitions = n_partitions
        super().__init__(*args, **kwargs)

    def _make_algorithm(self, sampling: Any) -> Algorithm:
        from pymoo.algorithms.moo.unsga3 import UNSGA3
        from pymoo.util.ref_dirs import get_reference_directions

        n_obj = len(self.objectives)
        # about one direction per individual unless given: C(p + m - 1, m - 1) directions for p partitions
        partitions = self.n_partitions or max(1, {1: 1, 2: self.population_size - 1, 3: 8}.get(n_obj, 4))
        ref_dirs = get_reference_directions("das-dennis", n_obj, n_partitions=partitions)
        return UNSGA3(ref_dirs=ref_dirs, pop_size=self.population_size, sampling=sampling, **self._operators())

