"""predicted_hvi on shapes that can capture a predictor-guided search: a plateau of a cheap cost, a predictor
that ranks no better than chance."""

from typing import Any

import numpy as np
import pytest

import elasticnas as en
from elasticnas.predictors.base import Predictor
from elasticnas.records import TrialRecord
from elasticnas.searchers import create_searcher

N_GENES, N_OPS = 7, 4
OP_COST = np.array([0, 0, 0, 2])  # three free operations: 3^7 = 2,187 of 16,384 cells share the lowest cost


def _space() -> en.SearchSpace:
    return en.SearchSpace({"op": en.Choice(list(range(N_OPS)), size=N_GENES)})


def _metrics(config: dict[str, Any]) -> dict[str, float]:
    g = np.asarray(config["op"])
    cost = float(OP_COST[g].sum())
    if cost == 0:  # the plateau: accuracy set per cell, no smooth model predicts it
        cell = int(g @ (N_OPS ** np.arange(N_GENES)))
        accuracy = 50 + 28 * np.random.default_rng(cell).random() ** 4
    else:
        accuracy = 60 + 25 * (1 - np.exp(-cost / 5)) + float(np.sin(g[0] * g[3] + g[1]))
    return {"accuracy": accuracy, "cost": cost}


def _lowest_cost_share(seed: int, n: int = 80, **kwargs: Any) -> float:
    space = _space()
    objectives = en.records.as_objectives({"accuracy": "maximize", "cost": "minimize"})
    searcher = create_searcher(
        "predicted_hvi", space, objectives, cheap_metrics={"cost": lambda c: _metrics(c)["cost"]}, seed=seed, **kwargs
    )
    costs = []
    for i in range(n):
        (config,) = searcher.ask(1)
        m = _metrics(config)
        costs.append(m["cost"])
        searcher.tell([TrialRecord(i, config, space.config_id(config), m)])
    return float(np.mean(np.array(costs) == 0))


class _MeanPredictor(Predictor):
    """Predicts the mean, with the targets' spread as uncertainty, everywhere: a model that cannot rank."""

    has_uncertainty = True

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        pass

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(X)), np.ones(len(X))


def test_lowest_cost_plateau_takes_a_bounded_share() -> None:
    assert _lowest_cost_share(0) <= 0.2
    assert _lowest_cost_share(1) <= 0.2


def test_the_guards_bound_the_plateau_when_the_predictor_cannot_rank() -> None:
    """A model predicting the mean gives every candidate the same optimistic accuracy, so the cheapest cells
    win each pick unless the plateau cap and the fallback stop them."""
    guarded = _lowest_cost_share(0, predictor=_MeanPredictor)
    unguarded = _lowest_cost_share(0, predictor=_MeanPredictor, plateau_share=0, fallback=False)
    assert unguarded > 0.5
    assert guarded < 0.5 * unguarded


def test_a_predictor_that_cannot_rank_hands_proposals_to_evolution() -> None:
    space = _space()
    objectives = en.records.as_objectives({"accuracy": "maximize", "cost": "minimize"})
    rng = np.random.default_rng(0)
    searcher = create_searcher("predicted_hvi", space, objectives, seed=0)  # both expensive: noise to learn
    for i in range(60):
        (config,) = searcher.ask(1)
        searcher.tell(
            [TrialRecord(i, config, space.config_id(config), {"accuracy": rng.random(), "cost": rng.random()})]
        )
    diag = searcher.diagnostics()
    assert diag["search_tau"] and diag["search_tau"][-1]["kendall_tau"] < 0.3
    assert diag["evolution_share"] > 0  # evolution is probed: how much more it gets, its results decide (below)
    assert diag["front_entry_rate"]["evolution"] is not None


@pytest.mark.parametrize(
    ("tau", "model", "evolution", "low", "high"),
    [
        (0.0, [1] * 10 + [0] * 20, [0] * 30, 0.0, 0.05),  # the model ranks badly but its picks enter the front
        (0.0, [0] * 30, [1] * 10 + [0] * 20, 0.95, 1.0),  # evolution's children enter, the model's do not
        (0.0, [1] * 10 + [0] * 20, [1] * 4, 0.1, 0.1),  # too few results of evolution: it is probed
        (0.0, [1] * 10 + [0] * 20, [1] * 5, 0.9, 1.0),  # ... until it shows what it brings
        (0.9, [0] * 30, [1] * 30, 0.0, 0.0),  # a trusted predictor keeps every proposal
    ],
)
def test_evolution_gets_the_share_its_results_earn(tau, model, evolution, low, high) -> None:
    space = _space()
    objectives = en.records.as_objectives({"accuracy": "maximize", "cost": "minimize"})
    searcher = create_searcher("predicted_hvi", space, objectives, seed=0)
    searcher._tau, searcher._tau_n = {"accuracy": tau}, 100
    searcher._entered["model"].extend(model)
    searcher._entered["evolution"].extend(evolution)
    assert low <= searcher._evolution_share() <= high


def test_when_every_plateau_is_full_the_fullest_takes_no_pick() -> None:
    """A cheap objective with few distinct values makes every plateau full; then the fullest is closed."""
    from elasticnas.searchers._predicted_hvi import _open_plateaus

    np.testing.assert_array_equal(_open_plateaus(np.array([2.0, 5, 9]), cap=4), [True, False, False])
    np.testing.assert_array_equal(_open_plateaus(np.array([6.0, 9, 9, 7]), cap=4), [True, False, False, True])
