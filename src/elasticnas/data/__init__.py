"""Data loading: tensors, Datasets, DataLoaders and ImageNet-layout image folders (Pillow-decoded)."""

from elasticnas.data._builtin import (
    BuiltinDataset,
    builtin_dataset,
    builtin_weights,
    has_builtin_weights,
    list_builtin_datasets,
    register_builtin_dataset,
)
from elasticnas.data._imagefolder import (
    DEFAULT_CROP_FRACTION,
    GRAY_MEAN,
    GRAY_STD,
    IMAGE_EXTENSIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataError,
    DataSource,
    ImageFolder,
    as_loader,
    eval_transform,
    resize_batch,
)

__all__ = [
    "BuiltinDataset",
    "builtin_dataset",
    "builtin_weights",
    "has_builtin_weights",
    "list_builtin_datasets",
    "register_builtin_dataset",
    "DEFAULT_CROP_FRACTION",
    "GRAY_MEAN",
    "GRAY_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "DataError",
    "DataSource",
    "ImageFolder",
    "as_loader",
    "eval_transform",
    "resize_batch",
]
