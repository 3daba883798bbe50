"""Built-in data shipped with the package or its dependencies: no downloads.

``builtin_dataset("digits")`` is scikit-learn's handwritten digits (1,797 real
8x8 grey-scale images of the digits 0-9, from the UCI ML repository "Optical
Recognition of Handwritten Digits"; distributed inside scikit-learn under its BSD
licence), upsampled bilinearly to the super-network's resolution and normalised,
with fixed, stratified train / calibration / validation splits.

``builtin_weights("tiny_mbv3")`` is the path of the trained ``tiny_mbv3``
super-network shipped in ``elasticnas/data/tiny_mbv3/`` (see its README for the
exact training command).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from elasticnas.errors import ElasticNASError
from elasticnas.registry import Registry

if TYPE_CHECKING:  # PyTorch is imported where it is used, so that list_builtin_datasets() loads without it
    import torch
    from torch.utils.data import DataLoader

SPLITS: tuple[str, ...] = ("train", "calib", "val")
DIGITS_FRACTIONS: tuple[float, float, float] = (0.6, 0.1, 0.3)  # train, calib, val
DIGITS_SPLIT_SEED = 0
_DATA_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, eq=False)
class BuiltinDataset:
    """Image tensors ``(N, C, R, R)`` and integer labels for the three fixed splits.

    ``indices[split]`` are the positions of a split's samples in the original data
    set, so the splits can be checked for being fixed and disjoint.
    """

    name: str
    resolution: int
    num_classes: int
    in_channels: int
    train: tuple[torch.Tensor, torch.Tensor]
    calib: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    indices: dict[str, np.ndarray] = field(repr=False)
    source: str = ""

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` of split ``name`` (one of ``train``, ``calib``, ``val``)."""
        if name not in SPLITS:
            raise ElasticNASError(f"unknown split {name!r}; choose one of: {', '.join(SPLITS)}")
        return getattr(self, name)  # type: ignore[no-any-return]  # one of the split fields

    def loader(
        self, name: str, *, batch_size: int = 64, shuffle: bool = False, seed: int = 0
    ) -> DataLoader[tuple[torch.Tensor, ...]]:
        """A ``DataLoader`` over split ``name`` (shuffling seeded with ``seed``)."""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        x, y = self.split(name)
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=gen)


DatasetFactory = Callable[..., BuiltinDataset]
BUILTIN_DATASETS: Registry[DatasetFactory] = Registry("built-in dataset")


def register_builtin_dataset(name: str, factory: DatasetFactory, *, aliases: tuple[str, ...] = ()) -> None:
    """Register a factory ``(resolution=..., seed=...) -> BuiltinDataset``."""
    BUILTIN_DATASETS.register(name, factory, aliases=aliases)


def list_builtin_datasets(pattern: str | None = None) -> list[str]:
    """Names of the built-in data sets."""
    return BUILTIN_DATASETS.names(pattern)


_CACHE: dict[tuple[str, int, int], BuiltinDataset] = {}


def builtin_dataset(name: str = "digits", *, resolution: int = 32, seed: int = DIGITS_SPLIT_SEED) -> BuiltinDataset:
    """The built-in data set ``name`` at ``resolution`` px; ``seed`` fixes the splits (cached)."""
    canonical = BUILTIN_DATASETS.canonical(name)
    if int(resolution) < 1:
        raise ElasticNASError(f"resolution must be >= 1, got {resolution}")
    key = (canonical, int(resolution), int(seed))
    if key not in _CACHE:
        _CACHE[key] = BUILTIN_DATASETS.get(canonical)(resolution=int(resolution), seed=int(seed))
    return _CACHE[key]


def stratified_splits(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Disjoint index sets covering ``labels`` with the given fractions, stratified by class, seeded.

    Within each class the samples are permuted with ``seed`` and cut at the rounded
    cumulative fractions, so every split holds each class in proportion.
    """
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    cuts = np.cumsum(fractions)[:-1]
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        bounds = np.round(cuts * len(idx)).astype(int)
        for i, chunk in enumerate(np.split(idx, bounds)):
            parts[i].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _digits(*, resolution: int = 32, seed: int = DIGITS_SPLIT_SEED) -> BuiltinDataset:
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8) in [0, 1]
    labels = np.asarray(bunch.target, dtype=np.int64)
    idx = dict(zip(SPLITS, stratified_splits(labels, DIGITS_FRACTIONS, seed), strict=True))
    if resolution != images.shape[-1]:
        images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)
    train_x = images[torch.as_tensor(idx["train"])]
    mean, std = float(train_x.mean()), float(train_x.std())
    images = (images - mean) / std
    y = torch.as_tensor(labels)
    splits = {s: (images[torch.as_tensor(i)].contiguous(), y[torch.as_tensor(i)].contiguous()) for s, i in idx.items()}
    return BuiltinDataset(
        name="digits",
        resolution=resolution,
        num_classes=10,
        in_channels=1,
        train=splits["train"],
        calib=splits["calib"],
        val=splits["val"],
        indices=idx,
        source="scikit-learn load_digits (UCI ML Optical Recognition of Handwritten Digits; BSD-3-Clause)",
    )


register_builtin_dataset("digits", _digits)

# -- built-in weights ---------------------------------------------------------------------

BUILTIN_WEIGHTS: dict[str, str] = {"tiny_mbv3": "tiny_mbv3/digits.pt", "tiny_gpt": "tiny_gpt/model.safetensors"}


def builtin_weights(supernet: str) -> Path:
    """Path of the trained weights shipped for super-network ``supernet`` (e.g. ``tiny_mbv3``)."""
    if supernet not in BUILTIN_WEIGHTS:
        known = ", ".join(sorted(BUILTIN_WEIGHTS))
        raise ElasticNASError(f"no built-in weights for super-network {supernet!r}; shipped for: {known}")
    path = _DATA_DIR / BUILTIN_WEIGHTS[supernet]
    if not path.is_file():
        raise ElasticNASError(f"the built-in weights of {supernet!r} are missing from the installation: {path}")
    return path


def has_builtin_weights(supernet: str) -> bool:
    """Whether trained weights ship for ``supernet``."""
    return supernet in BUILTIN_WEIGHTS and (_DATA_DIR / BUILTIN_WEIGHTS[supernet]).is_file()


__all__ = [
    "BUILTIN_DATASETS",
    "BuiltinDataset",
    "builtin_dataset",
    "builtin_weights",
    "has_builtin_weights",
    "list_builtin_datasets",
    "register_builtin_dataset",
    "stratified_splits",
]
