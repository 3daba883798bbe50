"""The built-in ``tiny_gpt``: shipped trained, searched offline on the built-in text."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from elasticnas.cli import main
from elasticnas.data._spec import resolve_data
from elasticnas.measure import measure_accuracy
from elasticnas.supernets import create_supernet

pytest.importorskip("transformers")


def _perplexity(net, config) -> float:
    loss = measure_accuracy(net.extract(config), resolve_data("pystdlib:val"), batch_size=32, max_batches=2).loss
    return math.exp(loss)


def test_tiny_gpt_ships_trained_and_its_sub_networks_trade_size_for_perplexity() -> None:
    net = create_supernet("tiny_gpt")
    assert net.weights_source is None and net.task == "causal-lm" and net.method == "activation"
    largest, smallest = _perplexity(net, net.max_config()), _perplexity(net, net.min_config())
    assert largest < smallest < 20.0  # a byte-level model that learned Python: far from 256, uniform guessing
    assert net.costs(net.max_config())["params"] > 5 * net.costs(net.min_config())["params"]
    untrained = create_supernet("tiny_gpt", weights="random")
    assert untrained.weights_source == "random" and _perplexity(untrained, untrained.max_config()) > 100.0
    (ids,) = net.example_inputs(net.max_config(), 1, seed=0)
    with torch.no_grad():
        again = create_supernet("tiny_gpt")(ids)
        assert torch.equal(net(ids), again)


def test_search_tiny_gpt_offline_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from elasticnas.study import load_study

    db = f"sqlite:///{tmp_path / 's.db'}"
    argv = ["search", "--supernet", "tiny_gpt", "--objectives", "perplexity,params", "--n-evals", "4",
            "--max-val-batches", "1", "--storage", db, "--study", "g", "--no-progress", "--quiet"]
    assert main(argv) == 0
    study = load_study(db, "g")
    assert study.measurement["val_data"] == "pystdlib:val" and study.measurement["max_val_batches"] == 1
    assert all(r.metrics["perplexity"] < 20.0 for r in study.trials)
