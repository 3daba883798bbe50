"""Image folders in ImageNet layout, decoded with Pillow (no torchvision), and loader helpers."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, TensorDataset

from elasticnas.errors import ElasticNASError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
GRAY_MEAN: tuple[float] = (0.449,)  # the means of ImageNet's channel statistics, for one-channel images
GRAY_STD: tuple[float] = (0.226,)
DEFAULT_CROP_FRACTION = 0.875  # resize to r / 0.875, centre-crop r (224 -> 256 -> 224)


class DataError(ElasticNASError):
    """A data set cannot be read or used as asked."""


def eval_transform(
    image: Image.Image,
    resolution: int,
    *,
    crop_fraction: float = DEFAULT_CROP_FRACTION,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """Resize the shorter side to ``ceil(resolution / crop_fraction)``, centre-crop, normalise; (channels, r, r).

    ``channels`` is 3 (RGB) or 1 (grey); ``mean`` / ``std`` default to ImageNet's statistics.
    """
    if channels not in (1, 3):
        raise DataError(f"images are decoded with 1 or 3 channels, not {channels}")
    mean = mean if mean is not None else (IMAGENET_MEAN if channels == 3 else GRAY_MEAN)
    std = std if std is not None else (IMAGENET_STD if channels == 3 else GRAY_STD)
    image = image.convert("RGB" if channels == 3 else "L")
    short = math.ceil(resolution / crop_fraction)
    w, h = image.size
    if w <= h:
        new_w, new_h = short, max(short, round(h * short / w))
    else:
        new_w, new_h = max(short, round(w * short / h)), short
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left = (new_w - resolution) // 2
    top = (new_h - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    arr: np.ndarray = np.asarray(image, dtype=np.float32).reshape(resolution, resolution, channels) / 255.0
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


class ImageFolder(Dataset[tuple[torch.Tensor, int]]):
    """``root/<class>/<image>`` folders; classes are the sorted sub-folder names.

    Images are decoded with Pillow and transformed by :func:`eval_transform`
    at ``resolution`` (the sub-network's input size) with ``channels`` 3 (RGB) or 1 (grey).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        resolution: int,
        *,
        crop_fraction: float = DEFAULT_CROP_FRACTION,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        channels: int = 3,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"image folder {str(self.root)!r} does not exist or is not a directory")
        if resolution < 1:
            raise DataError(f"resolution must be >= 1, got {resolution}")
        self.resolution = int(resolution)
        if channels not in (1, 3):
            raise DataError(f"images are decoded with 1 or 3 channels, not {channels}")
        self.crop_fraction = crop_fraction
        self.channels = channels
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not self.classes:
            raise DataError(f"image folder {str(self.root)!r} has no class sub-folders (expected root/<class>/<image>)")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = []
        for cls in self.classes:
            for dirpath, _, files in sorted(os.walk(self.root / cls, followlinks=True)):
                for name in sorted(files):
                    if name.lower().endswith(IMAGE_EXTENSIONS):
                        self.samples.append((Path(dirpath) / name, self.class_to_idx[cls]))
        if not self.samples:
            raise DataError(f"image folder {str(self.root)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                x = eval_transform(
                    image,
                    self.resolution,
                    crop_fraction=self.crop_fraction,
                    mean=self.mean,
                    std=self.std,
                    channels=self.channels,
                )
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot decode image {str(path)!r}: {exc}") from None
        return x, label


DataSource = Any  # DataLoader | Dataset | (inputs, labels) tensors | image-folder path


def as_loader(
    data: DataSource,
    *,
    batch_size: int = 64,
    resolution: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    channels: int | None = None,
) -> DataLoader[Any]:
    """A ``DataLoader`` over ``data``.

    ``data`` may be a ``DataLoader`` (returned unchanged), a ``Dataset``, a
    pair ``(inputs, labels)`` of tensors or arrays, or the path of an image
    folder in ImageNet layout (then ``resolution`` is needed; images are
    decoded with ``channels`` 3 or 1, default 3). With ``channels``, grey image tensors
    (N, 1, H, W) are given three equal channels for an RGB network, as an image folder's
    grey images are; other mismatches are a :class:`DataError`. Shuffling is seeded.
    """
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, str | os.PathLike):
        if resolution is None:
            raise DataError("an image folder needs the input resolution to decode images at")
        dataset: Dataset[Any] = ImageFolder(data, resolution, channels=channels or 3)
    elif isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, tuple | list) and len(data) == 2:
        x, y = (torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for v in data)
        if len(x) != len(y):
            raise DataError(f"inputs and labels differ in length: {len(x)} vs {len(y)}")
        if channels is not None and x.dim() == 4 and x.shape[1] != channels:
            if (x.shape[1], channels) != (1, 3):
                raise DataError(f"the images have {x.shape[1]} channels; the network takes {channels}")
            x = x.repeat(1, 3, 1, 1)  # grey to RGB, as an image folder decodes grey images
        dataset = TensorDataset(x.float(), y.long())
    else:
        raise DataError(
            f"cannot load data from {type(data).__name__}; give a DataLoader, a Dataset, "
            "(inputs, labels) tensors or an image-folder path"
        )
    if batch_size < 1:
        raise DataError(f"batch size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, num_workers=num_workers)


def resize_batch(x: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Bilinearly resize an image batch (N, C, H, W) to ``resolution`` when it differs; else unchanged."""
    if resolution is None or x.dim() != 4 or (x.shape[-2] == resolution and x.shape[-1] == resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
