"""Recipes: every super-network, wrappers included, is built again from the JSON a study records."""

from __future__ import annotations

import json

import pytest
import torch

from elasticnas.errors import ElasticNASError
from elasticnas.supernets import create_supernet, rebuild_supernet
from elasticnas.supernets.base import IN_MEMORY_WEIGHTS
from elasticnas.training import SandwichTrainer, TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(("name", "weights"), [("tiny_mbv3", None), ("tiny_gpt", None), ("tiny_mbv3", "random")])
def test_a_registered_supernet_is_rebuilt_from_its_json_recipe(name: str, weights: str | None) -> None:
    net = create_supernet(name, weights=weights)
    recipe = json.loads(json.dumps(net.recipe()))
    assert recipe == {"supernet": name, "weights": weights, "options": {}}
    assert _same_weights(rebuild_supernet(recipe), net)


def test_weights_trained_in_memory_are_refused_until_saved(tmp_path) -> None:
    net = create_supernet("tiny_mbv3", weights="random")
    x, y = torch.randn(16, 1, 16, 16), torch.randint(0, 10, (16,))
    trainer = SandwichTrainer(net, TrainConfig(epochs=1, batch_size=8, num_random=0, seed=0))
    trainer.fit((x, y), progress=False)
    assert net.weights_source == IN_MEMORY_WEIGHTS
    with pytest.raises(ElasticNASError, match="never saved to a file.*export_weights"):
        rebuild_supernet(net.recipe())
    path = trainer.export_weights(tmp_path / "w.pt")
    assert net.recipe()["weights"] == str(path.resolve())
    assert _same_weights(rebuild_supernet(net.recipe()), net)
    trainer.fit((x, y), out=tmp_path / "ckpt.pt", progress=False)  # no epoch left: weights unchanged
    assert net.weights_source == str(path.resolve())


def test_an_unknown_wrapper_is_one_clear_error() -> None:
    recipe = {"wrapper": "prune", "options": {}, "weights": None, "base": create_supernet("tiny_mbv3").recipe()}
    with pytest.raises(ElasticNASError, match="prune"):
        rebuild_supernet(recipe)
