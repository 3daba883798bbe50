"""Optuna's samplers (NSGA-II, TPE) driven as searchers through Optuna's ask / tell interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from elasticnas.records import TrialRecord
from elasticnas.searchers.base import Searcher
from elasticnas.space import Config


class OptunaSearcher(Searcher):
    """Each proposal is an Optuna trial of an in-memory study; every position of every choice is one
    categorical parameter (``name_i``). Finished records are told back by config id; a proposal that
    duplicates a finished configuration is told that configuration's values at once, and one that
    violates a cheap constraint is told as failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(
            directions=[o.direction for o in self.objectives], sampler=self._make_sampler()
        )
        self._open: dict[str, list[Trial]] = {}

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def _seed(self) -> int:
        return int(self.rng.integers(2**31 - 1))

    def _suggest(self, trial: Trial) -> Config:
        cfg: Config = {}
        for name, choice in self.space.choices.items():
            values = [trial.suggest_categorical(f"{name}_{i}", choice.values) for i in range(choice.length)]
            cfg[name] = values[0] if choice.size is None else values
        return self.space.validate(cfg)

    def _tell_record(self, trial: Trial, record: TrialRecord) -> None:
        if record.ok and all(o.name in record.metrics for o in self.objectives):
            self._study.tell(trial, [float(record.metrics[o.name]) for o in self.objectives])
        else:
            self._study.tell(trial, state=TrialState.FAIL)

    def _propose(self, n: int) -> list[Config]:
        out: list[Config] = []
        for _ in range(50 * n):
            if len(out) == n:
                break
            trial = self._study.ask()
            cfg = self._suggest(trial)
            cid = self.space.config_id(cfg)
            if cid in self.history:
                self._tell_record(trial, self.history[cid])
            elif not self.cheap_feasible(cfg):
                self._study.tell(trial, state=TrialState.FAIL)
            elif cid in self._open or cid in self.pending:
                self._study.tell(trial, state=TrialState.FAIL)
            else:
                self._open[cid] = [trial]
                out.append(cfg)
        return out

    def _observe(self, records: Sequence[TrialRecord]) -> None:
        for r in records:
            for trial in self._open.pop(r.config_id, []):
                self._tell_record(trial, r)


class OptunaNSGA2Searcher(OptunaSearcher):
    """Optuna's ``NSGAIISampler`` (population 50)."""

    def __init__(self, *args: Any, population_size: int = 50, **kwargs: Any) -> None:
        self.population_size = population_size
        super().__init__(*args, **kwargs)

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(population_size=self.population_size, seed=self._seed())


class OptunaTPESearcher(OptunaSearcher):
    """Optuna's multi-objective ``TPESampler`` (multivariate, 20 random start-up trials)."""

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=self._seed(), multivariate=True, n_startup_trials=20)
