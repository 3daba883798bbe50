"""Every registered searcher on a product space: architecture x adapter ranks x per-layer bit-widths."""

from typing import Any

import numpy as np
import pytest

import elasticnas as en
from elasticnas import list_searchers
from elasticnas.space import Config
from elasticnas.testing.searchers import toy_metrics, toy_space


class AdapterSpace(en.SearchSpace):
    """Whether each of 4 layers gets a LoRA adapter, and its rank; the rank of a layer without one is inactive."""

    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        G = np.atleast_2d(genes)
        mask = np.zeros(G.shape, dtype=bool)
        mask[:, 4:8] = G[:, :4] == 0  # adapt[i] is False
        return mask


def product_space() -> en.SearchSpace:
    adapters = AdapterSpace({"adapt": en.Choice([False, True], size=4), "rank": en.Choice([4, 8, 16], size=4)})
    return toy_space() * adapters * en.SearchSpace({"bits": en.Choice([4, 8], size=3)})


def product_metrics(space: en.SearchSpace, config: Config) -> dict[str, float]:
    toy = toy_metrics(toy_space(), {k: config[k] for k in ("ks", "e", "d", "r")})
    extra = float(space.to_genes(config)[19:].sum())
    return {"accuracy": toy["accuracy"] + 0.5 * extra, "latency_ms": toy["latency_ms"] + 0.4 * extra}


# small populations, so that every searcher gets past its random start within the budget
SMALL = {
    "predicted_hvi": {"n_initial": 6},
    "linas": {"population_size": 6, "inner_evals": 300},
    "nsga2": {"population_size": 6},
    "agemoea": {"population_size": 6},
    "smsemoa": {"population_size": 6},
    "optuna_nsga2": {"population_size": 6},
}


def _run(name: str, storage: str | None = None) -> en.Study:
    space = product_space()
    study = en.create_study(space, {"accuracy": "maximize", "latency_ms": "minimize"}, storage=storage, study_name="p")
    study.optimize(lambda c: product_metrics(space, c), n_evals=16, searcher=name, seed=0, **SMALL.get(name, {}))
    return study


@pytest.mark.parametrize("name", list_searchers())
def test_every_searcher_runs_on_a_product_space(name: str, tmp_path: Any) -> None:
    storage = f"sqlite:///{tmp_path / 'product.db'}"
    study = _run(name, storage)
    space = study.space
    ids = [r.config_id for r in study.trials]
    assert len(ids) == len(set(ids)) == 16
    for r in study.trials:
        assert space.validate(r.config) == r.config and space.config_id(r.config) == r.config_id
        # the adapter part canonicalised its own inactive genes
        assert all(rank == 4 for adapt, rank in zip(r.config["adapt"], r.config["rank"], strict=True) if not adapt)
    again = en.load_study(storage, "p")
    assert again.space == space
    assert [r.config_id for r in again.trials] == ids
    assert [r.config_id for r in _run(name).trials] == ids  # same seed, same trials
