"""The shipped ``tiny_mbv3`` weights: small, safe to load, and trained (largest beats smallest)."""

from __future__ import annotations

import pytest
import torch

from elasticnas.data import builtin_dataset, builtin_weights, has_builtin_weights
from elasticnas.errors import ElasticNASError
from elasticnas.measure import measure_accuracy
from elasticnas.supernets import SUPERNETS


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    net = SUPERNETS.get("tiny_mbv3")(seed=123)  # random weights, replaced below
    net.name = "tiny_mbv3"
    net.load_weights(builtin_weights("tiny_mbv3"))
    return net.eval()


def test_weights_ship_within_the_size_budget() -> None:
    assert has_builtin_weights("tiny_mbv3")
    path = builtin_weights("tiny_mbv3")
    assert path.stat().st_size <= 10 * 2**20
    meta = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert meta["supernet"] == "tiny_mbv3" and meta["method"] in ("sandwich", "progressive")
    with pytest.raises(ElasticNASError, match="no built-in weights"):
        builtin_weights("ofa_resnet50")


def test_largest_beats_smallest_on_validation(trained) -> None:  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ds = builtin_dataset("digits", resolution=32)
        out = {}
        for name, cfg in (("max", trained.max_config()), ("min", trained.min_config())):
            sub = trained.extract(cfg)
            out[name] = measure_accuracy(sub, ds.val, calib_data=ds.calib, resolution=trained.resolution(cfg))
    finally:
        torch.set_num_threads(threads)
    assert out["max"].top1 >= 95.0
    assert out["min"].top1 >= 85.0
    assert out["max"].top1 >= out["min"].top1
    assert out["max"].loss < out["min"].loss
