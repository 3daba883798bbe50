"""The built-in digits data set: real images, fixed disjoint stratified splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elasticnas.data import builtin_dataset, list_builtin_datasets
from elasticnas.data._builtin import _CACHE, stratified_splits
from elasticnas.errors import ElasticNASError


def test_digits_is_listed() -> None:
    assert "digits" in list_builtin_datasets()


def test_splits_are_disjoint_and_cover_the_data() -> None:
    ds = builtin_dataset("digits", resolution=16)
    idx = [set(ds.indices[s].tolist()) for s in ("train", "calib", "val")]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert set().union(*idx) == set(range(1797))
    sizes = [len(i) for i in idx]
    assert sizes[0] > sizes[2] > sizes[1] > 100


def test_splits_are_fixed_across_calls_and_resolutions() -> None:
    a = builtin_dataset("digits", resolution=16)
    _CACHE.clear()
    b = builtin_dataset("digits", resolution=16)
    c = builtin_dataset("digits", resolution=32)
    assert a is not b
    for s in ("train", "calib", "val"):
        assert np.array_equal(a.indices[s], b.indices[s])
        assert np.array_equal(a.indices[s], c.indices[s])
        assert torch.equal(a.split(s)[0], b.split(s)[0])
        assert torch.equal(a.split(s)[1], c.split(s)[1])
    other = builtin_dataset("digits", resolution=16, seed=1)
    assert not np.array_equal(a.indices["val"], other.indices["val"])


def test_images_are_real_upsampled_and_normalised() -> None:
    from sklearn.datasets import load_digits

    ds = builtin_dataset("digits", resolution=32)
    x, y = ds.train
    assert x.shape[1:] == (1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3
    # labels are the original ones, in the split's index order
    assert np.array_equal(y.numpy(), load_digits().target[ds.indices["train"]])
    # every split holds every class in proportion (stratified)
    for s in ("train", "calib", "val"):
        counts = np.bincount(ds.split(s)[1].numpy(), minlength=10)
        assert counts.min() >= 0.8 * counts.mean()


def test_loader_yields_the_split() -> None:
    ds = builtin_dataset("digits", resolution=16)
    xs, ys = zip(*ds.loader("calib", batch_size=50), strict=True)
    assert torch.equal(torch.cat(ys), ds.calib[1])


def test_user_errors() -> None:
    ds = builtin_dataset("digits", resolution=16)
    with pytest.raises(ElasticNASError, match="unknown split"):
        ds.split("test")
    with pytest.raises(ElasticNASError, match="unknown built-in dataset"):
        builtin_dataset("mnist-full")


def test_stratified_splits_fractions() -> None:
    labels = np.repeat(np.arange(4), 50)
    parts = stratified_splits(labels, (0.5, 0.2, 0.3), seed=3)
    assert [len(p) for p in parts] == [100, 40, 60]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(200))
