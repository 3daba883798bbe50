"""The contract every searcher keeps, as a pytest test class.

Use it for a searcher of your own::

    import pytest
    from elasticnas.testing.searchers import SearcherContract

    @pytest.fixture(params=["my_searcher"])
    def searcher_name(request):
        return request.param

    class TestMySearcher(SearcherContract):
        pass
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import elasticnas as en
from elasticnas.space import Config


def toy_space() -> en.SearchSpace:
    """A small OFA-like space: 8 kernels, 8 expand ratios, 2 depths, a resolution."""
    return en.SearchSpace(
        {
            "ks": en.Choice([3, 5, 7], size=8),
            "e": en.Choice([3, 4, 6], size=8),
            "d": en.Choice([2, 3, 4], size=2),
            "r": en.Choice([160, 192, 224]),
        }
    )


def toy_metrics(space: en.SearchSpace, config: Config) -> dict[str, float]:
    """Conflicting accuracy / latency / size / energy of a toy configuration (deterministic)."""
    g = space.to_genes(config).astype(float)
    width = g[8:16].mean()
    kernel = g[:8].mean()
    depth = g[16:18].mean()
    res = g[18] / 2
    accuracy = 70 + 4 * np.sqrt(width + 0.2) + 3 * np.sqrt(kernel + 0.1) + 2 * depth + 2 * res - 0.1 * g[0]
    latency = 5 + 3 * width * (1 + res) + 2 * kernel + 1.5 * depth + 0.05 * g[1]
    params = 1 + 2 * width + kernel + depth
    energy = 1 + width * kernel + res
    return {"accuracy": accuracy, "latency_ms": latency, "params_m": params, "energy": energy}


_DIRECTIONS = {"accuracy": "maximize", "latency_ms": "minimize", "params_m": "minimize", "energy": "minimize"}


class SearcherContract:
    """Tests every registered searcher must pass. Needs a ``searcher_name`` fixture."""

    n_evals = 24
    searcher_kwargs: dict[str, Any] = {}

    def _study(self, n_objectives: int = 2, **kwargs: Any) -> en.Study:
        names = list(_DIRECTIONS)[:n_objectives]
        return en.create_study(toy_space(), {n: _DIRECTIONS[n] for n in names}, **kwargs)

    def _run(self, searcher_name: str, seed: int, n_objectives: int = 2, **kwargs: Any) -> en.Study:
        study = self._study(n_objectives)
        space = study.space
        study.optimize(
            lambda c: toy_metrics(space, c), n_evals=self.n_evals, searcher=searcher_name, seed=seed,
            **self.searcher_kwargs, **kwargs,
        )
        return study

    def test_proposals_are_valid_distinct_and_new(self, searcher_name: str) -> None:
        space = toy_space()
        objectives = en.records.as_objectives({"accuracy": "maximize", "latency_ms": "minimize"})
        searcher = en.create_searcher(searcher_name, space, objectives, seed=0, **self.searcher_kwargs)
        seen: set[str] = set()
        for _ in range(3):
            batch = searcher.ask(4)
            assert 1 <= len(batch) <= 4
            ids = [space.config_id(c) for c in batch]
            assert len(set(ids)) == len(ids)
            assert not seen & set(ids)
            seen |= set(ids)
            records = [
                en.TrialRecord(number=len(seen) + i, config=c, config_id=cid, metrics=toy_metrics(space, c))
                for i, (c, cid) in enumerate(zip(batch, ids, strict=True))
            ]
            searcher.tell(records)
            assert not searcher.pending

    def test_same_seed_same_trials(self, searcher_name: str) -> None:
        a = [r.config_id for r in self._run(searcher_name, seed=3).trials]
        b = [r.config_id for r in self._run(searcher_name, seed=3).trials]
        assert len(a) == self.n_evals
        assert a == b

    def test_different_seeds_differ(self, searcher_name: str) -> None:
        a = [r.config_id for r in self._run(searcher_name, seed=1).trials]
        b = [r.config_id for r in self._run(searcher_name, seed=2).trials]
        assert a != b

    def test_never_evaluates_a_config_twice(self, searcher_name: str) -> None:
        study = self._run(searcher_name, seed=0)
        ids = [r.config_id for r in study.trials]
        assert len(ids) == len(set(ids)) == self.n_evals

    def test_resume_reaches_total_without_duplicates(self, searcher_name: str, tmp_path: Any) -> None:
        storage = f"sqlite:///{tmp_path / 'resume.db'}"
        space = toy_space()
        calls: list[str] = []

        def evaluate(c: Config) -> dict[str, float]:
            calls.append(space.config_id(c))
            return toy_metrics(space, c)

        first = en.create_study(
            space, {"accuracy": "maximize", "latency_ms": "minimize"}, storage=storage, study_name="s"
        )
        first.optimize(evaluate, n_evals=10, searcher=searcher_name, seed=0, **self.searcher_kwargs)
        again = en.load_study(storage, "s")
        again.optimize(evaluate, n_evals=self.n_evals, searcher=searcher_name, seed=0, **self.searcher_kwargs)
        again.optimize(evaluate, n_evals=self.n_evals, searcher=searcher_name, seed=0, **self.searcher_kwargs)
        ids = [r.config_id for r in again.trials]
        assert len(calls) == len(ids) == self.n_evals
        assert len(set(ids)) == self.n_evals

    def test_failed_evaluations_are_recorded_and_search_goes_on(self, searcher_name: str) -> None:
        space = toy_space()
        count = {"n": 0}

        def flaky(c: Config) -> dict[str, float]:
            count["n"] += 1
            metrics = toy_metrics(space, c)
            if count["n"] % 4 == 0:
                metrics["latency_ms"] = math.nan
            return metrics

        study = self._study()
        study.optimize(flaky, n_evals=self.n_evals, searcher=searcher_name, seed=0, **self.searcher_kwargs)
        assert len(study.failed_trials) == self.n_evals // 4
        assert len(study.trials) + len(study.failed_trials) == self.n_evals
        assert all("non-finite" in (r.error or "") for r in study.failed_trials)

    def test_cheap_constraint_is_never_violated(self, searcher_name: str) -> None:
        space = toy_space()
        cheap = {"latency_ms": lambda c: toy_metrics(space, c)["latency_ms"]}
        study = self._study(constraints=["latency_ms<=12"])
        study.optimize(
            lambda c: {"accuracy": toy_metrics(space, c)["accuracy"]},
            n_evals=self.n_evals, searcher=searcher_name, seed=0, cheap_metrics=cheap, **self.searcher_kwargs,
        )
        assert len(study.trials) == self.n_evals
        assert all(r.metrics["latency_ms"] <= 12 for r in study.trials)

    def test_three_and_four_objectives(self, searcher_name: str) -> None:
        for k in (3, 4):
            study = self._run(searcher_name, seed=0, n_objectives=k)
            assert len(study.trials) == self.n_evals
            assert len(study.pareto_front()) >= 1
